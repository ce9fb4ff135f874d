"""``facezoo serve`` in process: every endpoint answers what the Python API answers, every bad
input is a 4xx with the library's message, and the limits hold (size, pixels, auth, CORS, a
bounded queue with 503, a per-request timeout). Tiny untrained models: numbers, not quality."""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import io
import json
import socket
import sys
import tempfile
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

import facezoo
from facezoo._analyze import Analyzer, FaceAnalysis
from facezoo._images import decode_image, decode_photo
from facezoo.cli import main
from facezoo.serve import ServeSettings, _pool
from facezoo.testing import PHOTOS as ASSETS
from facezoo.testing import png_claiming

HAVE_SERVE = all(importlib.util.find_spec(m) for m in ("fastapi", "httpx", "uvicorn"))
SKIP_REASON = "the serve extra is not installed: pip install -e '.[serve,test]' (FastAPI, uvicorn, python-multipart, httpx)"
PORTRAIT, SAME, OTHER, GROUP = (ASSETS / f"{n}.jpg" for n in ("portrait", "portrait_same_person", "portrait_other_person", "group"))


@pytest.fixture(scope="module")
def models():
    if not HAVE_SERVE:
        pytest.skip(SKIP_REASON)
    torch.manual_seed(0)
    return {task: facezoo.load(task, "test_resnet", pretrained=False) for task in ("beauty", "age-gender", "identity")}


def make_client(models, *, raise_server_exceptions=True, **settings):
    from fastapi.testclient import TestClient

    from facezoo.serve import create_app

    models["identity"].gallery.clear()
    return TestClient(create_app(models=list(models.values()), settings=ServeSettings(**settings)), raise_server_exceptions=raise_server_exceptions)


@pytest.fixture
def client(models):
    with make_client(models) as client:
        yield client


def upload(path, field="image"):
    return {field: (path.name, path.read_bytes(), "image/jpeg")}


def blocking(model, monkeypatch):
    """Make ``model.predict`` wait until the returned ``release`` event is set; ``entered`` is set on entry."""
    entered, release = threading.Event(), threading.Event()
    original = model.predict

    def slow(*args, **kwargs):
        entered.set()
        release.wait(30)
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "predict", slow)
    return entered, release


# -- endpoints = the Python API ---------------------------------------------------------------------
def test_healthz_readyz_and_models(client, models):
    assert client.get("/healthz").json() == {"status": "ok", "version": facezoo.__version__}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] and ready.json()["capacity"] == 5
    listed = client.get("/v1/models").json()
    assert [m["model"] for m in listed["models"]] == [m.config.model_id for m in models.values()]
    assert {m["task"]: m["can"] for m in listed["models"]} == {"beauty": [], "age-gender": [], "identity": ["verify", "gallery"]}
    assert listed["models"][0]["config"] == models["beauty"].config.to_dict() and listed["models"][0]["trained"] is False
    assert listed["limits"]["max_upload_bytes"] == ServeSettings().max_upload_bytes and listed["auth"] is False


def test_openapi_page_works_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "/swagger/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
    assert client.get("/swagger/swagger-ui-bundle.js").status_code == 200
    assert "/v1/analyze" in client.get("/openapi.json").json()["paths"]


def test_analyze_answers_what_the_python_api_answers(client, models):
    response = client.post("/v1/analyze", files=upload(GROUP))
    assert response.status_code == 200, response.text
    expected = Analyzer(models=list(models.values()))(GROUP)
    body = response.json()
    assert len(expected) == 2 and body["faces"] == [face.to_dict() for face in expected]
    assert body["captions"] == [{t: FaceAnalysis(f.face, {t: r}).caption() for t, r in f.results.items()} for f in expected]
    assert body["image"] == {"width": 480, "height": 328} and "annotated" not in body


def test_analyze_runs_only_the_chosen_tasks_and_takes_base64_json(client):
    multipart = client.post("/v1/analyze?tasks=beauty,age-gender", files=upload(PORTRAIT)).json()
    assert set(multipart["faces"][0]) == {"face", "beauty", "age-gender"}
    data_url = "data:image/jpeg;base64," + base64.b64encode(PORTRAIT.read_bytes()).decode()
    as_json = client.post("/v1/analyze?tasks=beauty,age-gender", json={"image": data_url}).json()
    assert as_json == multipart
    unknown = client.post("/v1/analyze?tasks=beuty", files=upload(PORTRAIT))
    assert unknown.status_code == 404 and "unknown loaded task 'beuty'. Did you mean 'beauty'?" in unknown.json()["detail"]


def test_annotated_photo_is_the_librarys_drawing(client, models):
    body = client.post("/v1/analyze?annotate=true", files=upload(GROUP)).json()
    header, _, encoded = body["annotated"].partition(",")
    assert header == "data:image/jpeg;base64"
    expected = facezoo.annotate(GROUP, Analyzer(models=list(models.values()))(GROUP))
    buffer = io.BytesIO()
    expected.save(buffer, format="JPEG", quality=90)
    assert base64.b64decode(encoded) == buffer.getvalue()
    jpeg = client.post("/v1/annotate", files=upload(GROUP))
    assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg" and jpeg.content == buffer.getvalue()


def test_predict_answers_what_model_predict_answers(client, models):
    for detect, query in ((None, ""), (False, "?detect=false")):
        body = client.post(f"/v1/predict/age-gender{query}", files=upload(PORTRAIT)).json()
        results = models["age-gender"].predict(PORTRAIT, detect=detect)
        assert body["faces"] == [r.to_dict() for r in results] and body["captions"] == [r.caption() + " (untrained)" for r in results]
    assert body["faces"][0]["face"] is None  # detect=false: the whole photo is the face
    missing = client.post("/v1/predict/keypoints", files=upload(PORTRAIT))
    assert missing.status_code == 404 and "Valid: age-gender, beauty, identity" in missing.json()["detail"]


def test_verify_answers_what_model_verify_answers(client, models):
    response = client.post("/v1/verify", files={**upload(PORTRAIT, "a"), **upload(SAME, "b")})
    assert response.json() == {"model": "identity/test_resnet", **models["identity"].verify(PORTRAIT, SAME).to_dict()}
    as_json = client.post("/v1/verify?model=identity", json={"a": base64.b64encode(PORTRAIT.read_bytes()).decode(), "b": base64.b64encode(SAME.read_bytes()).decode()})
    assert as_json.json() == response.json()
    one = client.post("/v1/verify", files=upload(PORTRAIT, "a"))
    assert one.status_code == 400 and "got no field 'b'" in one.json()["detail"]
    wrong = client.post("/v1/verify?model=beauty", files={**upload(PORTRAIT, "a"), **upload(SAME, "b")})
    assert wrong.status_code == 400 and "model 'beauty' cannot verify faces (it has no verify()); models that can: identity" in wrong.json()["detail"]


def test_gallery_enrol_identify_forget(client, models):
    identity = models["identity"]
    assert client.post("/v1/identify", files=upload(GROUP)).json()["detail"].startswith("the gallery is empty")
    enrolled = client.post("/v1/gallery/obama", files=[("image", (p.name, p.read_bytes(), "image/jpeg")) for p in (PORTRAIT, SAME)])
    assert enrolled.json() == {"model": "identity/test_resnet", "name": "obama", "embeddings": 2, "people": {"obama": 2}}
    client.post("/v1/gallery/eileen", json={"images": [base64.b64encode(OTHER.read_bytes()).decode()]})
    assert client.get("/v1/gallery").json() == {"model": "identity/test_resnet", "people": {"obama": 2, "eileen": 1}}
    found = client.post("/v1/identify?top_k=2", files=upload(GROUP)).json()
    assert found["matches"] == [[m.to_dict() for m in face] for face in identity.identify(GROUP, top_k=2)]
    assert client.delete("/v1/gallery/eileen").json()["people"] == {"obama": 2}
    gone = client.delete("/v1/gallery/eileen")
    assert gone.status_code == 404 and "unknown enrolled person 'eileen'" in gone.json()["detail"]
    bad_name = client.post("/v1/gallery/%20", files=upload(PORTRAIT))
    assert bad_name.status_code == 400 and "1 to 100 printable characters" in bad_name.json()["detail"]


def test_gallery_file_is_written_atomically_as_json_and_read_back(models, tmp_path):
    path = tmp_path / "gallery.json"
    with make_client(models, gallery=path) as client:
        client.post("/v1/gallery/obama", files=upload(PORTRAIT))
        saved = models["identity"].gallery["obama"].copy()
    data = json.loads(path.read_text())
    assert data["format"] == "facezoo-gallery" and list(data["models"]) == ["identity/test_resnet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gallery.json"]  # no temporary file left behind
    with make_client(models, gallery=path) as client:  # make_client empties the gallery first
        assert client.get("/v1/gallery").json()["people"] == {"obama": 1}
        np.testing.assert_array_equal(models["identity"].gallery["obama"], saved)
    path.write_text("{not json")
    with pytest.raises(facezoo.FacezooError, match=r"gallery .*gallery\.json' cannot be read .*fix or move the file"):
        make_client(models, gallery=path)


def test_a_gallery_directory_is_a_face_index_per_model(models, tmp_path, monkeypatch):
    path = tmp_path / "gallery"
    with make_client(models, gallery=path) as client:
        client.post("/v1/gallery/obama", files=[("image", (p.name, p.read_bytes(), "image/jpeg")) for p in (PORTRAIT, SAME)])
        client.post("/v1/gallery/eileen", files=upload(OTHER))
        client.post("/v1/gallery/obama", files=upload(PORTRAIT))  # adds a third embedding: one commit replaces the person's faces
        saved = models["identity"].gallery["obama"].copy()
        client.delete("/v1/gallery/eileen")
    index = facezoo.FaceIndex.open(path / "identity--test_resnet")
    assert index.model_id == "identity/test_resnet" and sorted(m["person"] for _, _, m in index.faces()) == ["obama"] * 3
    with make_client(models, gallery=path) as client:  # read back at start
        assert client.get("/v1/gallery").json()["people"] == {"obama": 3}
        np.testing.assert_allclose(models["identity"].gallery["obama"], saved, atol=1e-6)
        monkeypatch.setattr(facezoo.index.store.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
        failed = client.post("/v1/gallery/eileen", files=upload(OTHER))
        assert failed.status_code == 500 and "the change was undone" in failed.json()["detail"]
        assert client.get("/v1/gallery").json()["people"] == {"obama": 3}
    monkeypatch.undo()
    assert len(facezoo.FaceIndex.open(path / "identity--test_resnet")) == 3
    (tmp_path / "not-a-gallery").write_text("x")
    with pytest.raises(facezoo.FacezooError, match="is a file but not a .json gallery"):
        make_client(models, gallery=tmp_path / "not-a-gallery")


def test_gallery_write_failure_is_undone(models, tmp_path):
    with make_client(models, gallery=tmp_path / "missing-folder" / "gallery.json") as client:
        response = client.post("/v1/gallery/obama", files=upload(PORTRAIT))
        assert response.status_code == 500 and "cannot be written" in response.json()["detail"] and "the change was undone" in response.json()["detail"]
        assert models["identity"].gallery == {}


def test_verify_and_gallery_need_a_model_that_can(models):
    from fastapi.testclient import TestClient

    from facezoo.serve import create_app

    with TestClient(create_app(models=[models["beauty"]])) as client:
        for response in (client.post("/v1/verify", files={**upload(PORTRAIT, "a"), **upload(SAME, "b")}), client.get("/v1/gallery")):
            assert response.status_code == 404 and "no loaded model can" in response.json()["detail"]


# -- bad input: a 4xx naming the problem, with the library's own message ----------------------------
BAD = {
    "not an image": (lambda: {"files": {"image": ("notes.jpg", b"these are notes", "image/jpeg")}}, 415, "NotAnImageError"),
    "empty file": (lambda: {"files": {"image": ("empty.jpg", b"", "image/jpeg")}}, 415, "NotAnImageError"),
    "truncated JPEG": (lambda: {"files": {"image": ("t.jpg", PORTRAIT.read_bytes()[:7000], "image/jpeg")}}, 422, "InputError"),
    "tiny image": (lambda: {"files": {"image": ("tiny.png", png_bytes(Image.new("RGB", (10, 12))), "image/png")}}, 422, "InputError"),
    "decompression bomb": (lambda: {"files": {"image": ("bomb.png", png_claiming(30000, 30000), "image/png")}}, 413, "ImageTooLargeError"),
    "over max pixels": (lambda: {"files": {"image": ("big.png", png_claiming(8000, 6000), "image/png")}}, 413, "ImageTooLargeError"),
}


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("case", list(BAD))
def test_bad_photo_is_a_4xx_with_the_librarys_message(client, case):
    make, status, error = BAD[case]
    request = make()
    response = client.post("/v1/analyze", **request)
    assert response.status_code == status and response.json()["error"] == error
    name, data, _ = request["files"]["image"]
    with pytest.raises(facezoo.InputError) as expected:
        decode_image(data, f"upload 'image' ({name!r})", max_pixels=ServeSettings().max_pixels)
    assert response.json()["detail"] == str(expected.value)
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("request_", "status", "message"),
    [
        ({"files": {"photo": ("p.jpg", b"x", "image/jpeg")}}, 400, "got no field 'image'; send multipart/form-data with the file field 'image' (curl -F image=@photo.jpg)"),
        ({"data": {"image": "p.jpg"}, "files": {"other": ("o.txt", b"x", "text/plain")}}, 400, "field 'image' is text, not a file"),
        ({"files": [("image", ("a.jpg", b"x", "image/jpeg")), ("image", ("b.jpg", b"x", "image/jpeg"))]}, 400, "got 2 files in field 'image'"),
        ({"json": {"image": "not base64!"}}, 400, "JSON field 'image' is not valid base64"),
        ({"json": {"picture": "AAAA"}}, 400, "the JSON body lacks 'image'"),
        ({"json": ["AAAA"]}, 400, "the JSON body must be an object"),
        ({"content": b"{broken", "headers": {"content-type": "application/json"}}, 400, "the JSON body cannot be parsed"),
        ({"content": PORTRAIT.read_bytes(), "headers": {"content-type": "image/jpeg"}}, 415, "unsupported content type 'image/jpeg'"),
        ({"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}}, 400, "the multipart body cannot be parsed (Missing boundary"),
    ],
    ids=["no image field", "text field", "two files", "bad base64", "JSON without image", "JSON list", "broken JSON", "raw JPEG body", "no boundary"],
)
def test_malformed_request_is_a_4xx_saying_what_to_send(client, request_, status, message):
    response = client.post("/v1/analyze", **request_)
    assert response.status_code == status and message in response.json()["detail"], response.text


def test_photo_without_a_face(client):
    blank = {"image": ("blank.png", png_bytes(Image.new("RGB", (64, 64), (128, 128, 128))), "image/png")}
    assert client.post("/v1/analyze", files=blank).json()["faces"] == []
    response = client.post("/v1/verify", files={"a": blank["image"], "b": blank["image"]})
    assert response.status_code == 422 and "no face found in the image" in response.json()["detail"]


def test_body_over_the_limit_is_413(models):
    with make_client(models, max_upload_bytes=20_000) as client:
        response = client.post("/v1/analyze", files=upload(GROUP))  # 31 kB
        assert response.status_code == 413 and "over the server's limit of 20000 bytes" in response.json()["detail"]
        assert client.post("/v1/analyze", files=upload(PORTRAIT)).status_code == 200  # 18 kB
        chunks = (b"x" * 4096 for _ in range(10))  # no Content-Length: refused while streaming in
        streamed = client.post("/v1/analyze", content=chunks, headers={"content-type": "application/json"})
        assert streamed.status_code == 413 and "the request body is over the server's limit of 20000 bytes" in streamed.json()["detail"]


def test_uploads_stay_in_memory(client, monkeypatch):
    """A 1.5 MB upload: Starlette would spool it to a temporary file on disk past 1 MB."""
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (720, 720, 3), dtype=np.uint8))
    data = png_bytes(noise)
    assert len(data) > 1_200_000

    def refuse(*_, **__):
        raise AssertionError("an upload was written to disk")

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", refuse)
    response = client.post("/v1/analyze?tasks=beauty", files={"image": ("noise.png", data, "image/png")})
    assert response.status_code == 200 and response.json()["image"] == {"width": 720, "height": 720}


def test_logs_hold_no_image_data(models, caplog):
    caplog.set_level("DEBUG")
    encoded = base64.b64encode(PORTRAIT.read_bytes()).decode()
    with make_client(models) as client:
        client.post("/v1/analyze", json={"image": encoded})
        client.post("/v1/analyze", json={"image": encoded[:-40]})  # an error, logged
    assert any("422" in r.getMessage() or "InputError" in r.getMessage() or "base64" in r.getMessage() for r in caplog.records)
    assert not any(encoded[1000:1040] in r.getMessage() for r in caplog.records)


# -- auth, CORS ---------------------------------------------------------------------------------------
def test_token_is_required_on_the_api_only(models):
    with make_client(models, token="s3cret-token") as client:
        denied = client.get("/v1/models")
        assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer" and "Authorization: Bearer" in denied.json()["detail"]
        assert client.get("/v1/models", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
        assert client.post("/v1/analyze", files=upload(PORTRAIT)).status_code == 401
        allowed = client.get("/v1/models", headers={"Authorization": "Bearer s3cret-token"})
        assert allowed.status_code == 200 and allowed.json()["auth"] is True
        assert [client.get(p).status_code for p in ("/healthz", "/readyz", "/", "/static/app.js", "/openapi.json")] == [200] * 5


def test_cors_is_off_unless_asked_for(models):
    preflight = {"Origin": "http://example.test", "Access-Control-Request-Method": "POST"}
    with make_client(models) as client:
        assert "access-control-allow-origin" not in client.options("/v1/analyze", headers=preflight).headers
        assert "access-control-allow-origin" not in client.get("/v1/models", headers={"Origin": "http://example.test"}).headers
    with make_client(models, cors_origins=("http://example.test",)) as client:
        assert client.options("/v1/analyze", headers=preflight).headers["access-control-allow-origin"] == "http://example.test"
        assert "access-control-allow-origin" not in client.options("/v1/analyze", headers={**preflight, "Origin": "http://evil.test"}).headers


# -- bounded concurrency and the timeout --------------------------------------------------------------
def test_beyond_workers_and_queue_is_503_with_retry_after(models, monkeypatch):
    entered, release = blocking(models["beauty"], monkeypatch)
    with make_client(models, workers=1, queue=0) as client:
        first = {}
        thread = threading.Thread(target=lambda: first.update(r=client.post("/v1/predict/beauty", files=upload(PORTRAIT))))
        thread.start()
        try:
            assert entered.wait(10)
            busy = client.post("/v1/analyze", files=upload(PORTRAIT))
            assert busy.status_code == 503 and int(busy.headers["retry-after"]) >= 1 and busy.json()["error"] == "Busy"
            assert client.get("/readyz").status_code == 503
        finally:
            release.set()
            thread.join(30)
        assert first["r"].status_code == 200
        assert client.get("/readyz").status_code == 200 and client.post("/v1/analyze", files=upload(PORTRAIT)).status_code == 200


def test_timeout_is_504_and_the_slot_is_held_until_the_work_ends(models, monkeypatch):
    _, release = blocking(models["beauty"], monkeypatch)
    with make_client(models, workers=1, queue=0, timeout=0.5) as client:
        try:
            late = client.post("/v1/predict/beauty", files=upload(PORTRAIT))
            assert late.status_code == 504 and "longer than the server's timeout of 0.5 s" in late.json()["detail"]
            assert client.post("/v1/predict/age-gender", files=upload(PORTRAIT)).status_code == 503  # the work still runs
        finally:
            release.set()
        pool = client.app.state.service.pool
        deadline = time.monotonic() + 10
        while pool.inside and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.inside == 0 and client.post("/v1/predict/age-gender", files=upload(PORTRAIT)).status_code == 200


def test_requests_within_capacity_all_succeed_with_the_same_answer(models):
    with make_client(models, workers=2, queue=2) as client:
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(client.post("/v1/analyze", files=upload(GROUP)))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert [a.status_code for a in answers] == [200] * 4
        assert all(a.json() == answers[0].json() for a in answers)


def test_unexpected_failure_is_a_500_without_details(models, monkeypatch):
    def broken(*_, **__):
        raise RuntimeError("internal secret /home/user/model.py")

    monkeypatch.setattr(models["beauty"], "predict", broken)
    with make_client(models, raise_server_exceptions=False) as client:
        response = client.post("/v1/predict/beauty", files=upload(PORTRAIT))
    assert response.status_code == 500 and response.json() == {"error": "InternalError", "detail": "the server failed on this request; its log says why"}


# -- settings and the command line --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"workers": 0}, "workers must be a whole number of at least 1"),
        ({"queue": -1}, "queue must be a whole number of at least 0"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"max_pixels": 10**12}, "above Pillow's decompression-bomb limit"),
        ({"token": "short"}, "at least 8 characters"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(facezoo.FacezooError, match=message):
        ServeSettings(**settings)


def test_two_models_of_one_task_are_refused(models):
    from facezoo.serve import create_app

    with pytest.raises(facezoo.FacezooError, match="two models do task 'beauty'"):
        create_app(models=[models["beauty"], facezoo.load("beauty", "test_resnet", pretrained=False)])


def test_cli_serve_passes_its_options(monkeypatch):
    import facezoo.serve

    calls = []
    monkeypatch.setattr(facezoo.serve, "serve", lambda tasks, **kwargs: calls.append((tasks, kwargs)), raising=False)
    monkeypatch.setenv("FACEZOO_SERVE_TOKEN", "from-the-environment")
    assert main(["serve", "--tasks", "beauty, age-gender", "--untrained", "--backbone", "test_resnet", "--port", "0", "--workers", "2", "--queue", "0",
                 "--max-upload-mb", "1", "--cors-origin", "http://a.test", "--cors-origin", "http://b.test"]) == 0
    tasks, options = calls[0]
    settings = options.pop("settings")
    assert tasks == ["beauty", "age-gender"] and options == {"host": "127.0.0.1", "port": 0, "log_level": "info", "backbone": "test_resnet", "device": None, "pretrained": False}
    assert (settings.workers, settings.queue, settings.max_upload_bytes, settings.token, settings.cors_origins) == (2, 0, 2**20, "from-the-environment", ("http://a.test", "http://b.test"))
    main(["serve", "--tasks", "beauty", "--runtime", "onnxruntime", "--token", "from-the-command-line"])
    assert calls[1][1]["runtime"] == "onnxruntime" and calls[1][1]["settings"].token == "from-the-command-line"


def test_cli_serve_fails_before_listening_on_an_unknown_task(capsys):
    if not HAVE_SERVE:
        pytest.skip(SKIP_REASON)
    assert main(["serve", "--tasks", "beuty", "--untrained", "--port", "0"]) == 2
    assert "facezoo: error: unknown task 'beuty'. Did you mean 'beauty'?" in capsys.readouterr().err


def test_serve_without_the_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    monkeypatch.delitem(sys.modules, "facezoo.serve.app", raising=False)
    import facezoo.serve

    monkeypatch.delattr(facezoo.serve, "create_app", raising=False)
    with pytest.raises(facezoo.MissingExtraError, match=r"facezoo serve needs the optional package 'fastapi': pip install 'facezoo\[serve\]'"):
        facezoo.serve.create_app(["beauty"])


# -- hostile clients ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "the JSON body is nested too deeply to parse"),
        (b'{"image": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "the JSON body is nested too deeply to parse"),
        (b'{"image": 1' + b"0" * 5000 + b"}", "the JSON body holds a number of 5001 characters, over the limit of 100"),
        (b'{"image": 0.' + b"5" * 5000 + b"}", "the JSON body holds a number of 5002 characters, over the limit of 100"),
    ],
    ids=["nested list", "nested field", "5000-digit integer", "5000-digit float"],
)
def test_hostile_json_is_a_400_naming_the_problem(client, body, message):
    response = client.post("/v1/analyze", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json() == {"error": "BadRequest", "detail": response.json()["detail"]}
    assert message in response.json()["detail"]


def real_png_bomb(width: int, height: int) -> bytes:
    """A valid grey PNG of ``width``×``height`` zeros: a few hundred kB that decode to ``width*height`` bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    squeeze = zlib.compressobj(9)
    row = bytes(width + 1)
    pixels = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_a_real_decompression_bomb_is_refused_naming_the_limit(client):
    bomb = real_png_bomb(10_000, 8_000)  # 80 megapixels in about 80 kB
    assert len(bomb) < 200_000
    response = client.post("/v1/analyze", files={"image": ("bomb.png", bomb, "image/png")})
    assert response.status_code == 413 and response.json()["error"] == "ImageTooLargeError"
    assert "10000×8000 px (80.0 megapixels) is over the limit of 40.0 megapixels" in response.json()["detail"]


def test_identify_answers_unknown_below_the_threshold_and_says_it(client, models, monkeypatch):
    identity = models["identity"]
    client.post("/v1/gallery/obama", files=upload(PORTRAIT))
    [[best]] = identity.identify(OTHER)
    for threshold, expected in ((best.similarity + 0.01, "unknown"), (best.similarity - 0.01, "obama")):
        monkeypatch.setattr(type(identity), "threshold", property(lambda _, t=threshold: t))
        found = client.post("/v1/identify", files=upload(OTHER)).json()
        assert found["threshold"] == threshold and found["identities"] == [expected], found
        assert found["matches"] == [[best.to_dict()]], "the nearest person and the similarity stay visible"
    refused = client.post("/v1/gallery/Unknown", files=upload(PORTRAIT))
    assert refused.status_code == 400 and "is what /v1/identify answers for a face it does not recognise" in refused.json()["detail"]


def test_the_gallery_is_capped(models, tmp_path):
    with make_client(models, gallery_people=1, gallery_photos=2) as client:
        assert client.post("/v1/gallery/obama", files=upload(PORTRAIT)).status_code == 200
        full = client.post("/v1/gallery/eileen", files=upload(OTHER))
        assert full.status_code == 409 and full.json()["error"] == "GalleryFull"
        assert "is full: 1 people, the server's limit (gallery_people=1)" in full.json()["detail"]
        many = client.post("/v1/gallery/obama", files=[("image", (p.name, p.read_bytes(), "image/jpeg")) for p in (SAME, PORTRAIT)])
        assert many.status_code == 409 and "'obama' would have 3 embeddings, over the server's limit of 2 per person" in many.json()["detail"]
        assert client.get("/v1/gallery").json()["people"] == {"obama": 1}
        assert client.get("/v1/models").json()["limits"]["gallery_people"] == 1
    path = tmp_path / "gallery.json"
    with make_client(models, gallery=path) as client:
        for name in ("obama", "eileen"):
            client.post(f"/v1/gallery/{name}", files=upload(PORTRAIT))
    with pytest.raises(facezoo.FacezooError, match=r"holds 2 people for identity/test_resnet, over the server's limits \(gallery_people=1"):
        make_client(models, gallery=path, gallery_people=1)


def test_gallery_names_are_kept_per_model(models, tmp_path):
    path = tmp_path / "gallery.json"
    other = {"format": "facezoo-gallery", "version": 1, "models": {"identity/another-model": {"obama": [[1.0, 0.0]]}}}
    path.write_text(json.dumps(other))
    with make_client(models, gallery=path) as client:
        assert client.get("/v1/gallery").json()["people"] == {}, "another model's people are not this model's"
        client.post("/v1/gallery/obama", files=upload(PORTRAIT))
        assert client.delete("/v1/gallery/obama").status_code == 200
    assert json.loads(path.read_text())["models"] == {"identity/another-model": {"obama": [[1.0, 0.0]]}, "identity/test_resnet": {}}


@contextlib.contextmanager
def running_server(models, settings: ServeSettings):
    """A real uvicorn server of ``models`` on a free port of 127.0.0.1, in a thread: yields the port."""
    import uvicorn

    from facezoo.serve import create_app
    from facezoo.serve.app import server_config

    models["identity"].gallery.clear()
    server = uvicorn.Server(server_config(create_app(models=list(models.values()), settings=settings), port=0, settings=settings, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.05)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


def ask(port: int, request: bytes, timeout: float = 30) -> bytes:
    """Send one raw HTTP request (with ``Connection: close``) and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as probe:
        probe.sendall(request)
        answer = b""
        while chunk := probe.recv(65536):
            answer += chunk
        return answer


READYZ = b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


@contextlib.contextmanager
def held_connections(port: int, count: int, start_of_request: bytes, timeout: float):
    """``count`` connections that each send ``start_of_request`` and then nothing: yields them, closes them."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            sock.sendall(start_of_request)
            held.append(sock)
        yield held
    finally:
        for sock in held:
            sock.close()


def test_slow_clients_holding_sockets_do_not_stop_readyz(models):
    """40 connections that send half a request head and stop: /readyz still answers 200 within 1 s,
    and the half-open connections are closed after header_timeout."""
    settings = ServeSettings(header_timeout=1.5)
    with running_server(models, settings) as port, held_connections(port, 40, b"POST /v1/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\n", 5) as slow:
        time.sleep(0.2)
        start = time.monotonic()
        answer = ask(port, READYZ, timeout=1)
        assert answer.startswith(b"HTTP/1.1 200") and time.monotonic() - start < 1.0, answer[:200]
        time.sleep(settings.header_timeout + 0.5)
        for sock in slow:
            sock.settimeout(2)
            assert sock.recv(1) == b"", "a connection with half a request head was left open"


def test_slow_uploads_do_not_take_the_inference_slots(models):
    """Three clients that send a request head and then a body slowly: with one worker and no
    queue, a normal request is still answered 200 and /readyz stays 200 (bodies are received in
    their own slots, before a worker is asked); the slow ones get 408 at the timeout."""
    upload_start = b"POST /v1/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"image\": \""
    with running_server(models, ServeSettings(workers=1, queue=0, timeout=4.0)) as port, held_connections(port, 3, upload_start, 10) as slow:
        time.sleep(0.3)
        ready = ask(port, READYZ)
        assert ready.startswith(b"HTTP/1.1 200"), ready[:300]
        body = json.dumps({"image": base64.b64encode(PORTRAIT.read_bytes()).decode()}).encode()
        head = f"POST /v1/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        answered = ask(port, head.encode() + body)
        assert answered.startswith(b"HTTP/1.1 200"), answered[:300]
        for sock in slow:
            sock.settimeout(10)
            assert sock.recv(4096).startswith(b"HTTP/1.1 408")


@pytest.mark.skipif(_pool._MALLOC_TRIM is None, reason="the C library has no malloc_trim (not glibc)")
def test_a_huge_photo_does_not_leave_the_server_larger(client):
    """A 36-megapixel photo is 108 MB decoded and about 370 MB at the request's peak; glibc kept all
    of it after the answer until the server gave the heap back after each request."""

    def resident_mb() -> float:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))

    buffer = io.BytesIO()
    Image.open(GROUP).convert("RGB").resize((7360, 4912)).save(buffer, "JPEG", quality=85)
    huge = {"image": ("huge.jpg", buffer.getvalue(), "image/jpeg")}
    del buffer
    client.post("/v1/analyze", files=upload(GROUP))
    before = resident_mb()
    for _ in range(3):
        assert client.post("/v1/analyze", files=huge).status_code == 200
    assert resident_mb() - before < 250, f"the server grew from {before:.0f} to {resident_mb():.0f} MB"


def test_a_large_jpeg_is_decoded_smaller_and_answered_in_its_own_pixels(tmp_path):
    """Past ``decode_side`` the JPEG decoder itself decodes at 1/2–1/8 (a 36-megapixel photo: a
    quarter of its pixels); boxes, landmarks and keypoints come back in the photo's pixels, where
    analysing the whole photo puts them."""
    from fastapi.testclient import TestClient

    from facezoo.serve import create_app

    big = Image.open(GROUP).convert("RGB").resize((7360, 5030))
    buffer = io.BytesIO()
    big.save(buffer, "JPEG", quality=90)
    decoded, size = decode_photo(buffer.getvalue(), max_side=2048)
    assert decoded.size == (3680, 2515) and size == (7360, 5030)
    models = [facezoo.load("keypoints")]
    with TestClient(create_app(models=models)) as client:
        answer = client.post("/v1/analyze", files={"image": ("big.jpg", buffer.getvalue(), "image/jpeg")}).json()
        single = client.post("/v1/predict/keypoints", files={"image": ("big.jpg", buffer.getvalue(), "image/jpeg")}).json()
    assert answer["image"] == {"width": 7360, "height": 5030, "analysed": {"width": 3680, "height": 2515}} == single["image"]
    whole = facezoo.analyze(big, models=models)
    assert len(answer["faces"]) == len(whole) == len(single["faces"]) == 2
    for got, want, alone in zip(answer["faces"], whole, single["faces"], strict=True):
        x1, y1, x2, y2 = want.face.box
        side = x2 - x1
        assert np.abs(np.array(got["face"]["box"]) - want.face.box).max() < 0.05 * side, (got["face"]["box"], want.face.box)
        assert np.abs(np.array(got["keypoints"]["points"]) - want.results["keypoints"].points).mean() < 0.02 * side
        assert alone["face"] == got["face"] and alone["points"] == got["keypoints"]["points"]
    with TestClient(create_app(models=models, settings=ServeSettings(decode_side=None))) as client:
        assert client.post("/v1/analyze", files={"image": ("big.jpg", buffer.getvalue(), "image/jpeg")}).json()["image"] == {"width": 7360, "height": 5030}

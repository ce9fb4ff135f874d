"""facezoo in the browser (facezoo.js on onnxruntime-web) against the Python API, in the system's
Chromium: the serve page's in-browser mode, the JS API on a page that is not facezoo's, an
export-web folder from a plain static server, and the webcam mode on Chromium's fake camera; and,
in Node, facezoo.js's image operations against Pillow's, pixel for pixel.

Same faces means box IoU >= 0.9 and same labels: age within 1 year, same gender and expression,
beauty within 0.05 (docs/browser.md). A screenshot of the in-browser mode is saved as a test
artifact; ``FACEZOO_DOCS_SCREENSHOT=1`` also writes it to ``docs/images/browser.png``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

import facezoo
from facezoo.detection.align import align_face
from facezoo.detection.boxes import box_iou
from facezoo.errors import FacezooError
from facezoo.testing.web import serving, static_site, write_y4m
from facezoo.web import BROWSER_TASKS, export_web, manifest, runtime_missing

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(__file__).resolve().parent / "assets" / "web"
TASKS = ("beauty", "age-gender", "expression")


@pytest.fixture(scope="module")
def models() -> list:
    return [facezoo.load(task) for task in TASKS]


@pytest.fixture(scope="module")
def python_faces(models, group_photos) -> dict[str, list[dict]]:
    """What facezoo.analyze finds in each group photo, as /v1/analyze's faces."""
    return {photo.name: [face.to_dict() for face in facezoo.analyze(photo, models=models)] for photo in group_photos}


def assert_same_faces(browser_faces: list[dict], python_faces: list[dict], where: str) -> None:
    assert len(browser_faces) == len(python_faces), f"{where}: the browser found {len(browser_faces)} faces, Python {len(python_faces)}"
    for n, want in enumerate(python_faces, 1):
        got = max(browser_faces, key=lambda f: box_iou(f["face"]["box"], want["face"]["box"]))
        overlap = box_iou(got["face"]["box"], want["face"]["box"])
        assert overlap >= 0.9, f"{where} face {n}: box IoU {overlap:.3f}"
        if "age-gender" in want:
            assert abs(got["age-gender"]["age"] - want["age-gender"]["age"]) <= 1.0, f"{where} face {n}: age {got['age-gender']} vs {want['age-gender']}"
            assert got["age-gender"]["gender"] == want["age-gender"]["gender"], f"{where} face {n}"
        if "expression" in want:
            assert got["expression"]["label"] == want["expression"]["label"], f"{where} face {n}: {got['expression']} vs {want['expression']}"
        if "beauty" in want:
            assert abs(got["beauty"]["score"] - want["beauty"]["score"]) <= 0.05, f"{where} face {n}: beauty {got['beauty']['score']} vs {want['beauty']['score']}"
        assert all(got[task]["model"] == want[task]["model"] for task in want if task != "face")


def analyse_on_page(page, photos: list[Path]) -> dict[str, list[dict]]:
    """Each photo through the page's file picker; the faces of its card's JSON."""
    found = {}
    for count, photo in enumerate(photos, 1):
        page.set_input_files("#photos", str(photo))
        page.locator("#results .card.done, #results .card.failed").nth(count - 1).wait_for(timeout=180_000)
        card = page.locator("#results .card").first
        assert "done" in card.get_attribute("class"), card.inner_text()
        assert card.get_attribute("data-mode") == "browser"
        found[photo.name] = json.loads(card.locator("pre.json").text_content())
    return found


def assert_no_upload(requests, where: str) -> None:
    """No request carried data: every one a GET without a body, none to the analysis API."""
    sent = [(r.method, r.url) for r in requests if r.method != "GET" or r.post_data_buffer or "/v1/analyze" in r.url or "/v1/predict" in r.url]
    assert not sent, f"{where}: the page sent {sent}"


def embed_page_result(browser, site: Path, photo: Path, tasks: str) -> tuple[dict, list]:
    """The JS API's answer for ``photo`` on tests/assets/web/embed.html (a page that is not
    facezoo's) served from the export-web folder ``site``, and the requests the page made."""
    shutil.copyfile(ASSETS / "embed.html", site / "embed.html")
    shutil.copyfile(photo, site / photo.name)
    with static_site(site) as (url, log):
        page = browser.new_page()
        page.goto(f"{url}embed.html?photo={photo.name}&tasks={tasks}")
        page.wait_for_function("() => window.result !== undefined", timeout=180_000)
        result = page.evaluate("window.result")
        page.close()
        return result, list(log)


def test_runtime_is_built():
    assert runtime_missing() is None, runtime_missing()


def test_an_install_without_the_runtime_says_how_to_build_it(monkeypatch, tmp_path):
    import facezoo.web

    monkeypatch.setattr(facezoo.web, "VENDOR", tmp_path)
    assert "bash web/build.sh" in runtime_missing()
    with pytest.raises(FacezooError, match="web/build.sh"):
        export_web(tmp_path / "site", ["beauty"])


def test_in_browser_mode_of_the_serve_page_matches_python(browser, models, group_photos, python_faces, tmp_path):
    from facezoo.serve import create_app

    with serving(create_app(models=models)) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors, requests = [], []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        page.wait_for_selector("input[name=task]")
        assert page.evaluate("crossOriginIsolated"), "the page is not cross-origin isolated: onnxruntime-web would run one thread"
        page.check("#in-browser")
        page.on("request", lambda request: requests.append(request))
        found = analyse_on_page(page, group_photos)
        for name, faces in python_faces.items():
            assert_same_faces(found[name], faces, name)
        assert_no_upload(requests, "the serve page in in-browser mode")
        assert not errors, errors
        card = page.locator("#results .card").first
        assert card.locator(".face-label").count() == len(found[group_photos[-1].name])
        labels = card.locator(".face-label rect").evaluate_all("rects => rects.map(r => [+r.getAttribute('x'), +r.getAttribute('y'), +r.getAttribute('width'), +r.getAttribute('height')])")
        width = Image.open(group_photos[-1]).width
        for i, (x, y, w, h) in enumerate(labels):  # inside the picture, none over another
            assert x >= 0 and x + w <= width + 0.5, (i, x, w, width)
            for x2, y2, w2, h2 in labels[i + 1 :]:
                assert not (x < x2 + w2 and x2 < x + w and y < y2 + h2 and y2 < y + h), "two captions overlap"
        shot = tmp_path / "browser.png"
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(shot))  # the window: the switch and the last photo analysed
        if os.environ.get("FACEZOO_DOCS_SCREENSHOT") == "1":
            Image.open(shot).convert("RGB").quantize(256).save(REPO / "docs" / "images" / "browser.png", optimize=True)
        page.close()


def test_js_api_on_a_page_that_is_not_facezoos(browser, group_photos, python_faces, tmp_path):
    photo = group_photos[0]
    result, log = embed_page_result(browser, export_web(tmp_path / "site", TASKS), photo, ",".join(TASKS))
    assert "error" not in result, result
    assert result["image"] == {"width": Image.open(photo).width, "height": Image.open(photo).height}
    assert [set(c) for c in result["captions"]] == [set(TASKS)] * len(result["faces"])
    assert_same_faces(result["faces"], python_faces[photo.name], f"the JS API on {photo.name}")
    assert all(r.method == "GET" for r in log)


def test_identity_in_the_browser_embeds_as_python_does(browser, group_photos, tmp_path):
    """Identity is framed on dlib's 5 points (facezoo.js's ShapePredictor, the file the manifest
    names): each face's embedding matches Python's to a cosine of 0.999."""
    site = export_web(tmp_path / "site", ["identity"])
    assert json.loads((site / "web" / "manifest.json").read_text())["detector"]["shape_predictor"] == "detector/dlib_shape_predictor_5.safetensors"
    photo = group_photos[0]
    want = [face.to_dict() for face in facezoo.analyze(photo, models=[facezoo.load("identity")])]
    result, _ = embed_page_result(browser, site, photo, "identity")
    assert "error" not in result, result
    assert len(result["faces"]) == len(want) >= 3
    for n, face in enumerate(want, 1):
        got = max(result["faces"], key=lambda f: box_iou(f["face"]["box"], face["face"]["box"]))
        cosine = float(np.dot(got["identity"]["embedding"], face["identity"]["embedding"]))
        assert cosine >= 0.999, f"face {n}: cosine {cosine:.5f} between the browser's embedding and Python's"


def test_the_js_api_refuses_tasks_that_find_faces_differently(browser, tmp_path):
    site = export_web(tmp_path / "site", ["beauty", "age-gender"])
    listed = json.loads((site / "web" / "manifest.json").read_text())
    listed["models"][1]["preprocess"]["min_face_score"] = 0.9
    (site / "web" / "manifest.json").write_text(json.dumps(listed))
    shutil.copyfile(ASSETS / "embed.html", site / "embed.html")
    with static_site(site) as (url, _):
        page = browser.new_page()
        page.goto(f"{url}embed.html?photo=none.jpg&tasks=beauty,age-gender")
        page.wait_for_function("() => window.result !== undefined", timeout=60_000)
        assert "find faces differently" in page.evaluate("() => window.result.error")
        page.close()


def test_export_web_from_a_plain_static_server(browser, group_photos, python_faces, tmp_path):
    from facezoo.cli import main

    site = tmp_path / "export"
    assert main(["export-web", str(site), "--tasks", ",".join(TASKS)]) == 0
    with static_site(site) as (url, log):
        page = browser.new_page()
        requests = []
        page.on("request", lambda request: requests.append(request))
        page.goto(url)
        page.wait_for_selector("input[name=task]")
        assert page.is_checked("#in-browser") and page.is_disabled("#in-browser")  # browser-only: there is no server to send to
        found = analyse_on_page(page, group_photos[:2])
        for name, faces in found.items():
            assert_same_faces(faces, python_faces[name], f"export-web, {name}")
        assert_no_upload(requests, "the export-web page")
        assert {r.method for r in log} == {"GET"}
        page.close()


def test_an_int8_export_runs_in_the_browser(browser, group_photos, tmp_path):
    """onnxruntime-web computes the quantised convolutions otherwise than native ONNX Runtime: its
    int8 answers are near Python's int8 ones, not equal (docs/browser.md)."""
    site = export_web(tmp_path / "site", ["age-gender"], quantize="int8")
    assert json.loads((site / "web" / "manifest.json").read_text())["models"][0]["model"] == "models/age-gender.int8.onnx"
    photo = group_photos[0]
    want = [f.to_dict() for f in facezoo.analyze(photo, models=[facezoo.load("age-gender", quantize="int8")])]
    got, _ = embed_page_result(browser, site, photo, "age-gender")
    assert "error" not in got, got
    assert len(got["faces"]) == len(want)
    for g, w in zip(got["faces"], want, strict=True):
        assert box_iou(g["face"]["box"], w["face"]["box"]) >= 0.9
        assert abs(g["age-gender"]["age"] - w["age-gender"]["age"]) <= 2.0 and g["age-gender"]["gender"] == w["age-gender"]["gender"]


def test_webcam_mode_tracks_faces_on_a_fake_camera(chromium, group_photos, tmp_path):
    from facezoo.serve import create_app

    photo = np.asarray(Image.open(group_photos[0]).convert("RGB").resize((660, 480)))
    shifts = [*range(0, 11), *range(9, 0, -1)]  # a gentle sway that loops without a jump
    video = write_y4m(tmp_path / "camera.y4m", [np.ascontiguousarray(photo[:, s : s + 640]) for s in shifts], fps=30)
    browser = chromium(args=["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}"])
    try:
        with serving(create_app(models=[facezoo.load("age-gender")])) as url:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("#webcam:not([disabled])")
            page.click("#webcam")
            seen, last, deadline = [], 0, time.monotonic() + 120
            while len(seen) < 12 and time.monotonic() < deadline:  # the ids of 12 frames after the first 3
                frames = int(page.get_attribute("#live", "data-frames") or 0)
                if frames > max(last, 3):
                    seen.append(json.loads(page.get_attribute("#live", "data-ids")))
                    last = frames
                time.sleep(0.02)
            assert len(seen) == 12, f"the webcam mode showed {last} frames in 120 s"
            expected = len(facezoo.load("age-gender").predict(photo[:, :640]))
            assert all(len(ids) == expected for ids in seen), (expected, seen)
            assert all(sorted(ids) == sorted(seen[0]) for ids in seen), f"face ids changed while the faces stayed: {seen}"
            assert float(page.get_attribute("#live", "data-fps")) > 0
            page.click("#webcam")
            page.close()
    finally:
        browser.close()


def test_manifest_names_what_the_browser_cannot_run():
    untrained = facezoo.load("beauty", "test_resnet", pretrained=False)
    boxed = facezoo.load("expression").with_preprocess(crop="box")
    data = manifest([facezoo.load("age-gender"), untrained, boxed])
    assert [m["task"] for m in data["models"]] == ["age-gender"]
    assert "runs on torch" in data["unsupported"]["beauty"]
    assert "crop 'box' is not one facezoo.js cuts" in data["unsupported"]["expression"]
    entry = data["models"][0]
    assert entry["preprocess"]["detector"] == "yunet" and entry["labels"] == ["male", "female"] and entry["model"] == "models/age-gender.onnx"
    assert set(BROWSER_TASKS) == {"beauty", "age-gender", "expression", "keypoints", "identity"}


def test_serve_web_files_are_the_loaded_models(models):
    from fastapi.testclient import TestClient

    from facezoo.serve import create_app

    client = TestClient(create_app(models=models[:1]))
    listed = client.get("/web/manifest.json").json()
    assert [m["task"] for m in listed["models"]] == ["beauty"] and listed["runtime_missing"] is None
    onnx = client.get("/web/models/beauty.onnx")
    assert onnx.status_code == 200 and onnx.content == Path(models[0].network.path).read_bytes()
    assert client.get("/web/vendor/ort-wasm-simd-threaded.wasm").headers["content-type"] == "application/wasm"
    page = client.get("/")
    assert page.headers["cross-origin-embedder-policy"] == "require-corp" and "'wasm-unsafe-eval'" in page.headers["content-security-policy"]
    missing = client.get("/web/../../etc/passwd")
    assert missing.status_code == 404
    assert client.get("/web/models/expression.onnx").status_code == 404  # not loaded here


def test_browser_decodes_photos_as_pillow_does(browser, tmp_path):
    """Chromium's pixels (facezoo.pixels) equal Pillow's on every photo of the bundle, EXIF orientation applied."""
    photos = sorted((Path(os.environ.get("FACEZOO_DATA", "")) / "photos").glob("*.jpg"))
    site = export_web(tmp_path / "site", ["beauty"])
    for photo in photos:
        shutil.copyfile(photo, site / photo.name)
    (site / "pixels.html").write_text('<!doctype html><meta charset="utf-8"><script src="web/facezoo.js"></script>', encoding="utf-8")
    read = """async (name) => {
        const p = await facezoo.pixels(name);
        let text = "";
        for (let i = 0; i < p.data.length; i += 8192) text += String.fromCharCode.apply(null, p.data.subarray(i, i + 8192));
        return [p.width, p.height, btoa(text)];
    }"""
    with static_site(site) as (url, _):
        page = browser.new_page()
        page.goto(url + "pixels.html")
        for photo in photos:
            width, height, data = page.evaluate(read, photo.name)
            expected = np.asarray(ImageOps.exif_transpose(Image.open(photo)).convert("RGB"))
            assert (height, width) == expected.shape[:2], photo.name
            got = np.frombuffer(base64.b64decode(data), np.uint8).reshape(expected.shape)
            assert np.array_equal(got, expected), f"{photo.name}: {int((got != expected).sum())} values differ from Pillow's"
        page.close()


def test_export_web_refuses_a_folder_in_use(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FacezooError, match="not empty"):
        export_web(tmp_path, ["beauty"])
    with pytest.raises(FacezooError, match="is a file"):
        export_web(tmp_path / "notes.txt", ["beauty"])
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(FacezooError, match="cannot write the site to /proc/facezoo-site"):
        export_web("/proc/facezoo-site", ["beauty"])
    site = export_web(tmp_path / "site", ["beauty", "age-gender"])
    export_web(site, ["beauty"], overwrite=True)  # a new export over an old one keeps only its own models
    assert sorted(p.name for p in (site / "web" / "models").iterdir()) == ["beauty.onnx"]


def test_a_token_guards_the_manifest_and_the_models(models):
    from fastapi.testclient import TestClient

    from facezoo.serve import ServeSettings, create_app

    client = TestClient(create_app(models=models[:1], settings=ServeSettings(token="web-token-1")))
    for path in ("/web/manifest.json", "/web/models/beauty.onnx"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer web-token-1"}).status_code == 200
    assert client.get("/web/facezoo.js").status_code == 200  # the page's code is public, as /static is


def test_image_operations_equal_pillows(tmp_path):
    """facezoo.js's resize, reduce, grayscale and aligned crops against Pillow's on a real photo, in Node."""
    node = shutil.which("node")
    assert node, "Node.js is needed (setup.sh's web/build.sh uses npm, which comes with it)"
    photo = Image.open(facezoo.testing.FACES[0]).convert("RGB")
    array = np.asarray(photo)
    marks = np.array([[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]]) * (photo.width / 112) * 0.6 + photo.width * 0.2
    cases = {
        "resize": (np.asarray(photo.resize((97, 61), Image.Resampling.BILINEAR)), "I.resize(img, 97, 61)"),
        "enlarge": (np.asarray(photo.resize((photo.width * 2 + 1, photo.height + 3), Image.Resampling.BILINEAR)), f"I.resize(img, {photo.width * 2 + 1}, {photo.height + 3})"),
        "reduce": (np.asarray(photo.crop((1, 2, photo.width - 1, photo.height)).reduce(3)), f"I.reduce(I.crop(img, 1, 2, {photo.width - 1}, {photo.height}), 3)"),
        "gray": (np.asarray(photo.convert("L").convert("RGB")), "I.grayscale(img)"),
        "align": (align_face(photo, marks, (112, 112), 0.75)[0], f"I.alignFace(img, {marks.tolist()}, 112, 112, 0.75, 'arcface').image"),
        "align-reduced": (align_face(photo, marks * 1.0, (28, 28), 0.75)[0], f"I.alignFace(img, {marks.tolist()}, 28, 28, 0.75, 'arcface').image"),
    }
    (tmp_path / "image.rgb").write_bytes(array.tobytes())
    script = [
        f"require({json.dumps(str(REPO / 'facezoo' / 'web' / 'static' / 'facezoo.js'))});",
        "const fs = require('fs'); const I = globalThis.facezoo._internals;",
        f"const img = {{width: {photo.width}, height: {photo.height}, data: new Uint8Array(fs.readFileSync({json.dumps(str(tmp_path / 'image.rgb'))}))}};",
    ]
    for name, (_, call) in cases.items():
        script.append(f"fs.writeFileSync({json.dumps(str(tmp_path / name))}, Buffer.from(({call}).data));")
    subprocess.run([node, "-e", "\n".join(script)], check=True, timeout=120)
    for name, (expected, _) in cases.items():
        got = np.frombuffer((tmp_path / name).read_bytes(), np.uint8)
        assert got.size == expected.size, name
        assert np.array_equal(got, expected.reshape(-1)), f"{name}: {int((got != expected.reshape(-1)).sum())} values differ from Pillow's"


def test_dlibs_shape_predictor_in_js_finds_pythons_points(group_photos, tmp_path):
    """facezoo.js's port of dlib's 5-point shape predictor (identity's framing) gives the Python
    port's points, which are dlib's (tests/test_shape_predictor.py), on every face of the shipped
    photos and the bundle's group photos, in Node."""
    from facezoo._detect import detect_faces
    from facezoo.detection.shape_predictor import WEIGHTS_PATH, ShapePredictor

    node = shutil.which("node")
    assert node, "Node.js is needed (setup.sh's web/build.sh uses npm, which comes with it)"
    script = [
        f"require({json.dumps(str(REPO / 'facezoo' / 'web' / 'static' / 'facezoo.js'))});",
        "const fs = require('fs'); const I = globalThis.facezoo._internals;",
        f"const file = fs.readFileSync({json.dumps(str(WEIGHTS_PATH))});",
        "const predictor = new I.ShapePredictor(I.readSafetensors(file.buffer.slice(file.byteOffset, file.byteOffset + file.length)));",
        "const found = [];",
    ]
    expected = []
    for n, path in enumerate([*facezoo.testing.FACES, *group_photos]):
        image = Image.open(path).convert("RGB")
        (tmp_path / f"{n}.rgb").write_bytes(np.asarray(image).tobytes())
        faces = detect_faces("yunet", [image], min_score=0.5)[0]
        script.append(f"const img{n} = {{width: {image.width}, height: {image.height}, data: new Uint8Array(fs.readFileSync({json.dumps(str(tmp_path / f'{n}.rgb'))}))}};")
        for face in faces:
            expected.append(ShapePredictor.pretrained()(np.asarray(image), face.landmarks).tolist())
            script.append(f"found.push(predictor.fromLandmarks(img{n}, {json.dumps([list(p) for p in face.landmarks])}));")
    script.append(f"fs.writeFileSync({json.dumps(str(tmp_path / 'points.json'))}, JSON.stringify(found));")
    subprocess.run([node, "-e", "\n".join(script)], check=True, timeout=120)
    assert len(expected) >= 20, "the photos should hold at least twenty faces"
    assert json.loads((tmp_path / "points.json").read_text()) == expected

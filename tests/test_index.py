"""facezoo.FaceIndex: add, delete, update, search (exact and HNSW), filters, one model only, crash safety."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

import facezoo
from facezoo.cli import main
from facezoo.index import build_index, store
from facezoo.testing import PHOTOS

pytest.importorskip("faiss", reason="face indexes need FAISS: pip install 'facezoo[index]'")


def clustered(n: int, seed: int = 0, people: int = 500, spread: float = 0.35) -> np.ndarray:
    """Unit vectors shaped like face embeddings: people (random centres) with several faces each."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = centres[rng.integers(0, people, n)] + rng.normal(scale=spread / np.sqrt(128), size=(n, 128))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def exact(vectors: np.ndarray, queries: np.ndarray, top: int) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :top]


@pytest.fixture
def index(tmp_path):
    return facezoo.FaceIndex.create(tmp_path / "faces.idx", model="identity")


def test_a_photo_finds_its_person_among_the_indexed_faces(index):
    photos = sorted(PHOTOS.glob("portrait*.jpg"))
    ids = index.add_photos(photos)
    assert len(ids) == len(index) == 3
    [[best, *_]] = index.search_photo(PHOTOS / "portrait_same_person.jpg", top=3)
    assert best.metadata["path"] == str(PHOTOS / "portrait_same_person.jpg") and best.similarity == pytest.approx(1.0, abs=1e-5)
    model = facezoo.load("identity")
    [matches] = index.search_photo(PHOTOS / "portrait.jpg", threshold=model.threshold)
    assert {m.metadata["image"] for m in matches} == {str(PHOTOS / "portrait.jpg"), str(PHOTOS / "portrait_same_person.jpg")}
    assert set(matches[0].to_dict()) == {"id", "similarity", "image", "path", "face_index", "box", "score", "time"}


def test_exact_segments_give_the_exact_top_k_and_filters_apply_inside_the_search(index):
    vectors = clustered(3000)
    ids = index.add(vectors[:2000], [{"part": i % 3} for i in range(2000)])
    ids += index.add(vectors[2000:], [{"part": i % 3} for i in range(2000, 3000)])  # a second segment
    queries = clustered(20, seed=1)
    got = [[m.id for m in hits] for hits in index.search(queries, top=10)]
    assert got == [[ids[r] for r in row] for row in exact(vectors, queries, 10)]
    filtered = index.search(queries, top=5, where={"part": 2})
    assert all(len(hits) == 5 and all(m.metadata["part"] == 2 for m in hits) for hits in filtered)
    by_function = index.search(queries, top=5, where=lambda meta: meta["part"] == 2)
    assert [[m.id for m in h] for h in by_function] == [[m.id for m in h] for h in filtered]


def test_hnsw_segments_reach_the_exact_neighbours(index, monkeypatch):
    monkeypatch.setattr(store, "HNSW_MIN_ROWS", 1000)
    vectors = clustered(5000)
    ids = np.array(index.add(vectors))
    assert index.info()["graphs"] == 1
    queries = clustered(100, seed=2)
    got = [[m.id for m in hits] for hits in index.search(queries, top=10)]
    truth = ids[exact(vectors, queries, 10)]
    recall = np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got, truth, strict=True)])
    assert recall >= 0.95
    index.delete(truth[:, 0].tolist())  # deleted rows are excluded inside the graph search, top-k stays k
    after = index.search(queries, top=10)
    assert all(len(hits) == 10 and not {m.id for m in hits} & set(truth[:, 0].tolist()) for hits in after)


def test_delete_update_and_compact_keep_ids_and_answers(index):
    vectors = clustered(300)
    ids = index.add(vectors, [{"n": i} for i in range(300)])
    assert index.delete([ids[0], ids[1], 10**9]) == 2 and len(index) == 298
    assert index.delete([ids[0]]) == 0
    index.update(ids[2], metadata={"n": "renamed"})
    index.update(ids[3], vector=vectors[100])
    assert len(index) == 298
    [[match]] = index.search(vectors[2], top=1)
    assert (match.id, match.metadata) == (ids[2], {"n": "renamed"})
    before = [[(m.id, round(m.similarity, 5)) for m in hits] for hits in index.search(vectors[:50], top=5)]
    index.compact()
    reopened = facezoo.FaceIndex.open(index.path)
    assert reopened.info()["segments"] == 1 and reopened.info()["deleted_rows"] == 0 and len(reopened) == 298
    assert [[(m.id, round(m.similarity, 5)) for m in hits] for hits in reopened.search(vectors[:50], top=5)] == before
    assert sorted(p.name for p in index.path.iterdir()) == [".lock", "index.json", reopened._manifest["segments"][0][0]]


def test_one_model_only(index, tmp_path):
    with pytest.raises(facezoo.FacezooError, match=r"embeddings of identity/dlib_resnet.v1 have 128 values; got an array of shape \(1, 64\)"):
        index.search(np.ones(64))
    with pytest.raises(facezoo.FacezooError, match=r"holds embeddings of identity/dlib_resnet.v1 .* identity/efficientnet_lite0.distilled-dlib .* cannot be compared"):
        index.add(clustered(2), model="identity/efficientnet_lite0.distilled-dlib")
    with pytest.raises(facezoo.FacezooError, match="makes no embeddings"):
        facezoo.FaceIndex.create(tmp_path / "beauty.idx", model="beauty")
    manifest = json.loads((index.path / "index.json").read_text())
    manifest["model"]["weights_sha256"] = "0" * 64  # as if the model's weights changed since the index was built
    (index.path / "index.json").write_text(json.dumps(manifest))
    with pytest.raises(facezoo.FacezooError, match=r"weights sha256 000000000000….*cannot be compared"):
        facezoo.FaceIndex.open(index.path).search_photo(PHOTOS / "portrait.jpg")


def test_bad_input_names_the_fix(index, tmp_path):
    with pytest.raises(facezoo.FacezooError, match="holds no face index .* facezoo index build"):
        facezoo.FaceIndex.open(tmp_path)
    with pytest.raises(facezoo.FacezooError, match="already holds a face index"):
        facezoo.FaceIndex.create(index.path)
    with pytest.raises(facezoo.FacezooError, match="3 vectors but 2 metadata"):
        index.add(clustered(3), [{}, {}])
    with pytest.raises(facezoo.FacezooError, match="NaN"):
        index.add(np.full((1, 128), np.nan))
    with pytest.raises(facezoo.FacezooError, match="must be JSON"):
        index.add(clustered(1), [{"when": object()}])
    with pytest.raises(facezoo.FacezooError, match="top must be a positive"):
        index.search(clustered(1), top=0)
    with pytest.raises(facezoo.FacezooError, match="no face with id 7"):
        index.update(7, metadata={})


def test_a_failed_commit_leaves_the_index_as_it_was(index, monkeypatch):
    index.add(clustered(10))
    real_replace = os.replace

    def failing(source, target):
        if str(target).endswith("index.json"):
            raise OSError("disk full")
        return real_replace(source, target)

    monkeypatch.setattr(store.os, "replace", failing)
    with pytest.raises(OSError, match="disk full"):
        index.add(clustered(10, seed=1))
    monkeypatch.setattr(store.os, "replace", real_replace)
    assert len(facezoo.FaceIndex.open(index.path)) == 10
    index.add(clustered(5, seed=2))  # the next writer removes what the failed one left
    assert len(facezoo.FaceIndex.open(index.path)) == 15
    assert not [p.name for p in index.path.iterdir() if p.name.startswith(".") and p.name != ".lock"]


def test_a_killed_writer_leaves_an_index_before_or_after_each_add(index):
    """SIGKILL a process that keeps adding batches of 2,000 faces: what remains opens, holds a
    whole number of batches, and takes the next add."""
    script = textwrap.dedent(f"""
        import numpy as np, facezoo
        index = facezoo.FaceIndex.open({str(index.path)!r})
        rng = np.random.default_rng(0)
        print("ready", flush=True)
        while True:
            index.add(rng.normal(size=(2000, 128)).astype(np.float32), [{{"batch": True}}] * 2000)
    """)
    for delay in (0.5, 1.3, 2.1):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reopened = facezoo.FaceIndex.open(index.path)
        assert len(reopened) % 2000 == 0
        assert len(reopened.search(clustered(1), top=3)[0]) == min(3, len(reopened))
    before = len(facezoo.FaceIndex.open(index.path))
    facezoo.FaceIndex.open(index.path).add(clustered(1))
    assert len(facezoo.FaceIndex.open(index.path)) == before + 1


@pytest.fixture
def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in PHOTOS.glob("*.jpg"):
        (folder / photo.name).write_bytes(photo.read_bytes())
    return folder


def _contents(index) -> list:
    return [(metadata["image"], metadata["face_index"], metadata["box"], vector) for _, vector, metadata in index.faces()]


def test_build_indexes_each_face_once_and_adds_only_new_photos(photo_folder, tmp_path, monkeypatch):
    index = build_index(photo_folder, tmp_path / "photos.idx", progress=False)
    expected = sum(len(faces) for faces in facezoo.load("identity").predict(sorted(photo_folder.glob("*.jpg"))))
    assert len(index) == expected and not (tmp_path / "photos.idx.build").exists()
    assert {m["image"] for _, _, m in index.faces()} == {p.name for p in photo_folder.glob("*.jpg")}
    assert len(build_index(photo_folder, tmp_path / "photos.idx", progress=False)) == expected  # nothing new: nothing added
    Image.new("RGB", (200, 200), "gray").save(photo_folder / "blank.jpg")  # a photo without a face
    assert len(build_index(photo_folder, tmp_path / "photos.idx", progress=False)) == expected
    assert "blank.jpg" in facezoo.FaceIndex.open(tmp_path / "photos.idx").photos()
    with monkeypatch.context() as patched:  # seen once, with or without faces: never embedded again
        patched.setattr("facezoo.index.build.batch", lambda *a, **k: pytest.fail("batch ran for photos the index has seen"))
        build_index(photo_folder, tmp_path / "photos.idx", progress=False)
    (photo_folder / "again.jpg").write_bytes((PHOTOS / "portrait.jpg").read_bytes())
    grown = build_index(photo_folder, tmp_path / "photos.idx", progress=False)
    assert len(grown) == expected + 1 and grown.info()["segments"] == 3  # the first build, blank.jpg's, again.jpg's
    grown.compact()
    assert len(grown) == expected + 1 and {"blank.jpg", "again.jpg"} <= set(facezoo.FaceIndex.open(tmp_path / "photos.idx").photos())
    with pytest.raises(facezoo.FacezooError, match="cannot be compared"):
        build_index(photo_folder, tmp_path / "photos.idx", model="identity/efficientnet_lite0.distilled-dlib", progress=False)


def test_build_on_ray_gives_the_index_of_the_local_engine(photo_folder, tmp_path):
    if importlib.util.find_spec("ray") is None:  # not importorskip: facezoo sets Ray's environment before it imports ray
        pytest.skip("the Ray engine needs Ray: pip install 'facezoo[ray]'")
    local = _contents(build_index(photo_folder, tmp_path / "local.idx", progress=False))
    on_ray = _contents(build_index(photo_folder, tmp_path / "ray.idx", engine="ray", workers=1, progress=False))
    assert [row[:2] for row in on_ray] == [row[:2] for row in local]
    for a, b in zip(local, on_ray, strict=True):
        assert a[2] == pytest.approx(b[2], abs=0.5) and np.allclose(a[3], b[3], atol=1e-4)


def test_a_killed_build_resumes_with_the_same_command(photo_folder, tmp_path):
    for copy in range(12):  # enough photos for several of batch's chunks
        for photo in PHOTOS.glob("*.jpg"):
            (photo_folder / f"{copy}-{photo.name}").write_bytes(photo.read_bytes())
    command = [sys.executable, "-m", "facezoo", "index", "build", str(photo_folder), "--output", str(tmp_path / "big.idx"), "--workers", "1"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list((tmp_path / "big.idx.build").glob("faces.jsonl.parts/part-*")) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "big.idx" / "index.json").exists(), "the build finished before it could be killed"
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    index = facezoo.FaceIndex.open(tmp_path / "big.idx")
    keys = [(m["image"], m["face_index"]) for _, _, m in index.faces()]
    faces_per_copy = sum(len(faces) for faces in facezoo.load("identity").predict(sorted(PHOTOS.glob("*.jpg"))))
    assert len(keys) == len(set(keys)) == 13 * faces_per_copy


def test_the_cli_searches_and_describes_an_index(photo_folder, tmp_path, capsys):
    assert main(["index", "build", str(photo_folder), "--output", str(tmp_path / "cli.idx")]) == 0
    assert main(["index", "search", str(tmp_path / "cli.idx"), str(PHOTOS / "portrait_same_person.jpg"), "--top", "2", "--ef-search", "64", "--json"]) == 0
    printed = capsys.readouterr().out
    [[best, second]] = json.loads(printed[printed.index("[") :])
    assert best["image"] == "portrait_same_person.jpg" and second["image"] == "portrait.jpg"
    assert main(["index", "info", str(tmp_path / "cli.idx"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["id"] == "identity/dlib_resnet.v1"
    assert main(["index", "info", str(tmp_path)]) == 2
    assert "holds no face index" in capsys.readouterr().err


def test_serve_searches_the_index(photo_folder, tmp_path):
    pytest.importorskip("fastapi", reason="facezoo serve needs its extra: pip install 'facezoo[serve]'")
    from fastapi.testclient import TestClient

    from facezoo.serve import ServeSettings, create_app

    build_index(photo_folder, tmp_path / "served.idx", progress=False)
    photo = (PHOTOS / "portrait_same_person.jpg").read_bytes()
    with TestClient(create_app(["identity"], settings=ServeSettings(index=tmp_path / "served.idx"))) as client:
        answer = client.post("/v1/search?top=3", files={"image": ("q.jpg", photo, "image/jpeg")}).json()
        assert answer["model"] == "identity/dlib_resnet.v1" and answer["threshold"] == facezoo.load("identity").threshold
        [face] = answer["faces"]
        assert [m["image"] for m in face["matches"]][:2] == ["portrait_same_person.jpg", "portrait.jpg"]
        assert "portrait_other_person.jpg" not in [m["image"] for m in face["matches"]]  # below the threshold
        loose = client.post("/v1/search?top=3&threshold=-1", files={"image": ("q.jpg", photo, "image/jpeg")}).json()
        assert len(loose["faces"][0]["matches"]) == 3
    with TestClient(create_app(["beauty"])) as client:
        missing = client.post("/v1/search", files={"image": ("q.jpg", photo, "image/jpeg")})
        assert missing.status_code == 404 and "facezoo serve --index" in missing.json()["detail"]


def test_milvus_gives_the_top_k_of_the_embedded_index(index, tmp_path):
    pytest.importorskip("pymilvus", reason="face indexes in Milvus need pymilvus and milvus-lite: pip install 'facezoo[milvus]'")
    from facezoo.index.milvus import MilvusFaceIndex

    milvus = MilvusFaceIndex.create(str(tmp_path / "faces.db"), model="identity", index_type="FLAT")  # FLAT: exact search
    vectors = clustered(2000)
    for target in (index, milvus):
        assert target.add(vectors[:1500], [{"part": i % 3} for i in range(1500)]) == list(range(1500))
        target.add(vectors[1500:], [{"part": i % 3} for i in range(1500, 2000)])
        assert target.delete([0, 5, 10**6]) == 2
        target.update(7, metadata={"part": "renamed"})
    queries = clustered(20, seed=3)

    def answers(target, **options):
        return [[(m.id, round(m.similarity, 4), m.metadata["part"]) for m in hits] for hits in target.search(queries, top=10, **options)]

    assert answers(milvus) == answers(index)
    assert answers(milvus, where={"part": 2}) == answers(index, where={"part": 2})
    assert answers(milvus, threshold=0.5) == answers(index, threshold=0.5)
    reopened = MilvusFaceIndex.open(str(tmp_path / "faces.db"))
    assert len(reopened) == len(index) == 1998 == len(list(reopened.faces())) and reopened.add(clustered(1)) == [2000]
    with pytest.raises(facezoo.FacezooError, match="cannot be compared"):
        reopened.add(clustered(1), model="identity/efficientnet_lite0.distilled-dlib")
    with pytest.raises(facezoo.FacezooError, match="runs only in the embedded FaceIndex"):
        reopened.search(queries, where=lambda m: True)
    with pytest.raises(facezoo.FacezooError, match="has no collection 'other'"):
        MilvusFaceIndex.open(str(tmp_path / "faces.db"), collection="other")


def test_a_reader_opening_during_a_compaction_gets_the_new_state_and_a_damaged_index_is_named(index, monkeypatch):
    index.add(clustered(20))
    index.add(clustered(20, seed=1))
    stale = json.loads((index.path / "index.json").read_text())
    index.compact()  # the two segments the stale manifest names are gone now
    reads = iter([stale])
    real = facezoo.FaceIndex._read_manifest
    monkeypatch.setattr(facezoo.FaceIndex, "_read_manifest", staticmethod(lambda path: next(reads, None) or real(path)))
    assert len(facezoo.FaceIndex.open(index.path)) == 40  # the stale manifest failed, the fresh one opened
    monkeypatch.undo()
    segment = json.loads((index.path / "index.json").read_text())["segments"][0][0]
    (index.path / segment / "ids.npy").unlink()
    with pytest.raises(facezoo.FacezooError, match="a file its index.json names is missing; the index is damaged"):
        facezoo.FaceIndex.open(index.path)


def test_a_manifest_naming_files_outside_the_index_is_refused(index):
    index.add(clustered(3))
    manifest = json.loads((index.path / "index.json").read_text())
    manifest["segments"] = [["../../elsewhere", 1]]
    (index.path / "index.json").write_text(json.dumps(manifest))
    with pytest.raises(facezoo.FacezooError, match="names files that are not an index's"):
        facezoo.FaceIndex.open(index.path)


def test_build_into_milvus_gives_the_faces_of_a_local_build(photo_folder, tmp_path):
    pytest.importorskip("pymilvus", reason="face indexes in Milvus need pymilvus and milvus-lite: pip install 'facezoo[milvus]'")
    from facezoo.index.milvus import MilvusFaceIndex

    local = _contents(build_index(photo_folder, tmp_path / "local.idx", progress=False))
    milvus = MilvusFaceIndex.create(str(tmp_path / "faces.db"), index_type="FLAT")
    with pytest.raises(facezoo.FacezooError, match="needs work="):
        build_index(photo_folder, milvus, progress=False)
    built = _contents(build_index(photo_folder, milvus, work=tmp_path / "work", progress=False))
    assert [row[:3] for row in built] == [row[:3] for row in local] and all(np.allclose(a[3], b[3], atol=1e-6) for a, b in zip(built, local, strict=True))
    assert build_index(photo_folder, milvus, work=tmp_path / "work", progress=False) is milvus and len(milvus) == len(local)  # nothing new

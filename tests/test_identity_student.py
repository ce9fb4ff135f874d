"""The identity default is the student distilled from dlib's face-recognition ResNet.

CI guards its LFW number on a fixed subset of View-2 pairs against the value measured by the
same call at export time (``config.json`` ``evaluation["smoke"]``), and checks that the student
never needs dlib. The distillation code is tested without the teacher where it can be; the
teacher itself only when the ``distill`` extra is installed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import facezoo
from facezoo.distill import DistillSettings, command_line, parse_source, relational_loss, validation_pairs

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEZOO_DATA", REPO.parent / "shared" / "data"))
needs_lfw = pytest.mark.skipif(not (DATA / "lfw" / "pairs.txt").is_file(), reason=f"LFW not found under {DATA} (set FACEZOO_DATA)")


def test_default_identity_model_is_the_distilled_student(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # loading and running it must not need the teacher
    model = facezoo.load("identity")
    assert model.config.trained and model.config.tag.startswith("distilled-")
    assert "threshold" in model.config.evaluation and "CelebA" in model.config.evaluation["threshold"]
    assert model.threshold == model.config.head["threshold"]
    [result] = model.predict(REPO / "tests" / "assets" / "portrait.jpg", detect=False)
    assert np.linalg.norm(result.embedding) == pytest.approx(1.0, abs=1e-4)


@needs_lfw
def test_student_lfw_subset_matches_its_export():
    model = facezoo.load("identity")
    smoke = model.config.evaluation["smoke"]
    report = facezoo.evaluate(model, "lfw", "view2", data_root=DATA, limit=smoke["limit"])
    for name in ("accuracy", "tar_at_far_1e-3"):
        assert report.metrics[name] == pytest.approx(smoke["metrics"][name], abs=5e-3), name


def test_sources_never_include_the_test_protocol():
    assert parse_source("fer2013:train:3000") == ("fer2013", "train", 3000)
    for bad in ("lfw:view2", "fewshot-five:train"):
        with pytest.raises(facezoo.FacezooError, match="never trains a student"):
            parse_source(bad)
    with pytest.raises(facezoo.FacezooError, match="dataset:split"):
        parse_source("celeba")
    assert not any(s.split(":")[0] in ("lfw", "fewshot-five") for s in DistillSettings().sources)


def test_validation_pairs_are_balanced_and_folded():
    labels = np.repeat(np.arange(6), 5)
    pairs = validation_pairs(labels)
    same = [p for p in pairs if p[2]]
    assert len(same) == 6 * 10 and len(pairs) == 2 * len(same)
    assert all((labels[a] == labels[b]) == s for a, b, s, _ in pairs)
    assert {p[3] for p in pairs} == set(range(10))
    assert validation_pairs(labels) == pairs  # deterministic


def test_relational_loss_is_zero_for_the_same_geometry():
    x = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    rotation, _ = torch.linalg.qr(torch.randn(16, 16))
    assert relational_loss(x @ rotation, x).item() == pytest.approx(0.0, abs=1e-6)
    assert relational_loss(torch.nn.functional.normalize(torch.randn(8, 16), dim=1), x).item() > 0


def test_command_line_round_trips_through_the_cli():
    from facezoo.cli import build_parser

    settings = DistillSettings(epochs=2, input_size=(112, 112), sources=("celeba:train", "bollywood:train"))
    line = command_line(settings, "runs/x")
    args = build_parser().parse_args(line.split()[1:])
    assert (args.command, args.epochs, args.input_size, args.sources) == ("distill", 2, [112, 112], ["celeba:train", "bollywood:train"])


def test_missing_teacher_names_the_extra(monkeypatch):
    from facezoo.distill import DlibTeacher

    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(facezoo.MissingExtraError, match=r"facezoo\[distill\]"):
        DlibTeacher()


@needs_lfw
def test_teacher_tells_people_apart():
    from PIL import Image

    from facezoo.distill import DlibTeacher

    try:
        teacher = DlibTeacher()
    except facezoo.MissingExtraError as exc:
        pytest.skip(str(exc))
    people = DATA / "lfw" / "lfw"
    a1, a2 = people / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg", people / "Aaron_Peirsol" / "Aaron_Peirsol_0003.jpg"
    b = people / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"
    embeddings = teacher.embed_crops([np.asarray(Image.open(p).convert("RGB")) for p in (a1, a2, b)])
    assert embeddings.shape == (3, 128)
    assert embeddings[0] @ embeddings[1] > embeddings[0] @ embeddings[2]

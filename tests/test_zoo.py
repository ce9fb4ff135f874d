"""Guard rails for the shipped pretrained models: they load offline, their cards exist and parse,
and a smoke evaluation on a fixed test subset reproduces the number stored at export time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

import facezoo
from facezoo.testing import PHOTOS

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEZOO_DATA", REPO.parent / "shared" / "data"))
BUILT_IN = ("beauty", "identity", "age-gender", "keypoints", "expression")
SHIPPED = [m for m in facezoo.list_models(pretrained=True) if m.split("/")[0] in BUILT_IN]


def card_path(model_id: str) -> Path:
    return REPO / "model_cards" / (model_id.replace("/", "__") + ".md")


def test_every_task_ships_a_default_model():
    defaults = {spec.task for spec in facezoo._plugins.registry().items("model") if spec.default and spec.model_id in SHIPPED}
    assert defaults == set(BUILT_IN)


@pytest.mark.parametrize("model_id", SHIPPED)
def test_shipped_model_has_matching_card(model_id):
    model = facezoo.load(model_id)
    assert model.config.trained and model.config.model_id == model_id
    shipped_card = Path(facezoo._plugins.registry().get("model", model_id).source) / "README.md"
    source_card = card_path(model_id)
    assert source_card.read_text() == shipped_card.read_text(), f"{source_card} differs from the shipped card"
    card = ModelCard(source_card.read_text())
    assert card.data.library_name == "facezoo"
    assert card.data.eval_results, "a shipped card states measured metrics"


@pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA}")
@pytest.mark.parametrize("model_id", SHIPPED)
def test_smoke_evaluation_matches_export(model_id):
    model = facezoo.load(model_id)
    evaluation = model.config.evaluation
    smoke = evaluation["smoke"]
    report = facezoo.evaluate(model, evaluation["dataset"], evaluation["split"], data_root=DATA, limit=smoke["limit"])
    for name, value in smoke["metrics"].items():  # to within two faces, or two same-person pairs (half
        # of a pair subset): the detector on another runtime may move a box by a hair and flip a borderline one
        assert report.metrics[name] == pytest.approx(value, abs=max(2e-3, 4 / smoke["limit"])), name


@pytest.mark.parametrize("model_id", SHIPPED)
def test_shipped_model_gives_the_same_answers_on_onnx_runtime(model_id):
    photo = DATA / "photos" / "group_sts106_crew.jpg"
    if not photo.exists():
        pytest.skip(f"{photo} not found")
    on_torch = facezoo.load(model_id, runtime="torch").predict(photo)
    onnx_model = facezoo.load(model_id, runtime="onnx")
    # the shipped model.onnx (its stamp names these weights), so that the lean install runs it without torch
    assert onnx_model.network.path == Path(facezoo._plugins.registry().get("model", model_id).source) / "model.onnx"
    on_onnx = onnx_model.predict(photo)
    assert len(on_torch) == len(on_onnx) == 7
    for a, b in zip(on_torch, on_onnx, strict=True):
        numbers_a, numbers_b = _numbers(a.to_dict()), _numbers(b.to_dict())
        # float32 on another engine: equal to rounding (ages in years, pixels and probabilities alike)
        assert numbers_b == pytest.approx(numbers_a, rel=2e-3, abs=0.02 if model_id.startswith("keypoints") else 2e-3)


def _numbers(data) -> list[float]:
    if isinstance(data, dict):
        return [v for key in sorted(data) for v in _numbers(data[key]) if key != "face"]
    if isinstance(data, list):
        return [v for item in data for v in _numbers(item)]
    return [float(data)] if isinstance(data, (int, float)) and not isinstance(data, bool) else []


# Only models whose int8 file kept the task's tolerance ship one (their cards say which do not).
SHIPPED_INT8 = [m for m in SHIPPED if (Path(facezoo._plugins.registry().get("model", m).source) / "model.int8.onnx").exists()]


def test_most_shipped_models_ship_int8():
    assert len(SHIPPED_INT8) >= len(SHIPPED) - 1, f"only {SHIPPED_INT8} ship an int8 model"


@pytest.mark.parametrize("model_id", SHIPPED_INT8)
def test_a_shipped_int8_model_matches_its_weights_and_finds_the_same_faces(model_id):
    photo = PHOTOS / "group.jpg"
    int8 = facezoo.load(model_id, runtime="onnx", quantize="int8")  # its stamp names these weights
    assert len(int8.predict(photo)) == len(facezoo.load(model_id).predict(photo)) > 0

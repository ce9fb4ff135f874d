"""Model cards: generated YAML front matter that huggingface_hub parses; the source cards in model_cards/."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import ModelCard

import facezoo
from facezoo import _plugins
from facezoo.cards import Baseline, CardInfo, Measured, model_card

REPO = Path(__file__).resolve().parents[1]
SOURCE_CARDS = sorted((REPO / "model_cards").glob("*.md"))


def _title(text: str) -> str:
    return next(line[2:].strip() for line in text.splitlines() if line.startswith("# "))


def test_card_front_matter_and_body_from_structured_data():
    config = facezoo.ModelConfig(task="beauty", backbone="efficientnet_lite0", tag="scut5500", trained=True, license="other", datasets=("scut-fbp5500",))
    info = CardInfo(
        summary="Scores faces on SCUT-FBP5500's 1-5 scale.",
        limitations="Trained on Asian and Caucasian faces only.",
        measured=(Measured("pc", 0.91234, "scut-fbp5500", "test", "60/40 split"),),
        baselines=(Baseline("ResNeXt-50", "pc", 0.8997, "Liang et al. 2018"),),
    )
    text = model_card(config, info)
    data = ModelCard(text).data
    assert (data.library_name, data.license, data.datasets) == ("facezoo", "other", ["scut-fbp5500"])
    assert {"facezoo", "beauty", "efficientnet_lite0"} <= set(data.tags)
    [result] = data.eval_results
    assert (result.metric_type, result.metric_value, result.dataset_split) == ("pc", 0.9123, "test")
    assert _title(text) == "beauty/efficientnet_lite0.scut5500" and "Trained by facezoo." in text
    assert "## Limitations\nTrained on Asian and Caucasian faces only." in text
    assert "| pc | 0.9123 | scut-fbp5500 | test | 60/40 split |" in text and "| ResNeXt-50 | pc | 0.8997 | Liang et al. 2018 |  |" in text


def test_saved_untrained_model_card_says_it_is_untrained(tmp_path):
    facezoo.load("glasses", "test_resnet", pretrained=False).save_pretrained(tmp_path)
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "facezoo" and card.data.license
    assert _title(card.text) == "glasses/test_resnet" and "**Untrained: random weights.**" in card.text


def card_path(model_id: str):
    """Where the source card of a pretrained model lives (the convention of tests/test_zoo.py)."""
    return REPO / "model_cards" / (model_id.replace("/", "__") + ".md")


@pytest.mark.parametrize("path", SOURCE_CARDS, ids=[p.name for p in SOURCE_CARDS])
def test_source_card_parses(path):
    card = ModelCard.load(path)
    assert card.data.library_name == "facezoo" and card.data.license
    if "__" in path.stem:  # the card of a model: task__backbone.tag.md
        assert path.stem.replace("__", "/") in facezoo.list_models(), f"{path.name} is the card of no registered model"


def test_every_built_in_pretrained_model_has_a_source_card():
    built_in = {p.name for p in facezoo.list_plugins() if p.distribution == "facezoo"}
    registry = _plugins.registry()
    models = [m for m in facezoo.list_models() if registry.owner("model", m) in built_in]
    assert [m for m in models if not card_path(m).is_file()] == [], "write a card for each into model_cards/"

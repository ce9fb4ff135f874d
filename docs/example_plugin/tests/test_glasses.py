"""Tests of the facezoo-glasses plugin, run against the installed package (pip install ./docs/example_plugin)."""

import json
import subprocess
import sys

import numpy as np
import torch

import facezoo
from facezoo_glasses import GlassesResult

FACE = np.random.default_rng(0).integers(0, 256, (120, 100, 3), dtype=np.uint8)  # any RGB image will do


def test_the_plugin_is_found_through_its_entry_point():
    assert "glasses" in facezoo.list_tasks()
    [info] = [p for p in facezoo.list_plugins() if p.name == "glasses"]
    assert info.distribution == "facezoo-glasses"


def test_predict_gives_json_ready_glasses_results():
    model = facezoo.load("glasses", "test_resnet", pretrained=False)
    [result] = model.predict(FACE, detect=False)
    assert isinstance(result, GlassesResult) and result.trained is False
    assert json.loads(json.dumps(result.to_dict()))["glasses"] == (result.probability >= 0.5)


def test_save_and_load_give_the_same_model(tmp_path):
    model = facezoo.load("glasses", "test_resnet", pretrained=False)
    model.save_pretrained(tmp_path)
    loaded = facezoo.load(str(tmp_path), runtime="torch")
    batch = torch.rand(2, 3, 96, 96)
    assert torch.equal(model.network(batch), loaded.network(batch))


def test_importing_the_plugin_imports_no_torch():
    code = "import sys, facezoo; facezoo.list_tasks(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_metrics_score_numpy_predictions_against_numpy_targets():
    """metrics runs on the inference side, where there is no torch: numpy in, a float accuracy out."""
    model = facezoo.load("glasses", "test_resnet", pretrained=False)
    predictions = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], dtype=np.float32)
    targets = np.eye(2, dtype=np.float32)[[0, 1, 1, 1]]
    scores = model.task.metrics(predictions, targets, model.config)
    assert scores == {"accuracy": 0.75} and type(scores["accuracy"]) is float

"""Tests of the facezoo-glasses plugin, run against the installed package (pip install ./docs/example_plugin)."""

import subprocess
import sys

import numpy as np
from facezoo_glasses import GlassesResult

import facezoo
from facezoo.testing import check_task


def test_the_plugin_is_found_through_its_entry_point():
    assert "glasses" in facezoo.list_tasks()
    [info] = [p for p in facezoo.list_plugins() if p.name == "glasses"]
    assert info.distribution == "facezoo-glasses"


def check_glasses(result):
    """What a glasses result means, on top of what facezoo.testing checks for every task."""
    assert isinstance(result, GlassesResult) and 0.0 <= result.probability <= 1.0
    assert result.glasses == (result.probability >= 0.5)


def test_glasses_passes_facezoo_checks():
    check_task("glasses", check_result=check_glasses)


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

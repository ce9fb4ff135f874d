"""Every registered task on three backbone families passes facezoo.testing's checks: build,
forward, predict (JSON-ready results, the same alone as in a batch), decode → metrics, save → load,
train. What each task's results mean is tested by its plugin (plugins/*/tests)."""

from __future__ import annotations

import pytest

import facezoo
from facezoo.testing import (
    BACKBONES,
    FACES,
    check_build,
    check_metrics,
    check_predict,
    check_save_load,
    check_training,
)

CASES = [(task, backbone) for task in facezoo.list_tasks() for backbone in BACKBONES]


@pytest.mark.parametrize(("task", "backbone"), CASES)
def test_build_forward_predict(task, backbone):
    model = check_build(task, backbone)
    check_predict(model, FACES)
    check_metrics(model, FACES)


@pytest.mark.parametrize(("task", "backbone"), CASES)
def test_save_load_gives_identical_outputs(task, backbone, tmp_path):
    check_save_load(check_build(task, backbone), tmp_path / "model", FACES[:3])


@pytest.mark.parametrize(("task", "backbone"), CASES)
def test_optimisation_steps_reduce_the_loss(task, backbone):
    check_training(check_build(task, backbone), FACES)

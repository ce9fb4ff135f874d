"""facezoo.testing catches the mistakes a plugin author makes, naming the task and what failed:
the example plugin's torch-style metrics on numpy, numpy numbers that are not JSON, decode in
the wrong space, a task with no synthetic targets, a spec that is not the registered one."""

from __future__ import annotations

import dataclasses
import importlib.util
import types
import unittest

import numpy as np
import pytest

import facezoo
from facezoo import _plugins
from facezoo.testing import (
    FACES,
    check_metrics,
    check_onnx,
    check_predict,
    check_task,
    check_training,
    synthetic_photos,
)


@pytest.fixture
def register():
    """Register a variant of the example plugin's glasses task under the name 'toy'."""

    def register_variant(**changes) -> facezoo.TaskSpec:
        spec = dataclasses.replace(_plugins.registry().get("task", "glasses"), name="toy", **changes)
        facezoo.register_plugin(types.SimpleNamespace(facezoo_register_tasks=facezoo.hookimpl(lambda register: register(spec))), name="toy-plugin")
        return spec

    yield register_variant
    if "toy-plugin" in [p.name for p in facezoo.list_plugins()]:
        facezoo.unregister_plugin("toy-plugin")


def test_a_correct_task_passes_every_check(register):
    spec = register()
    results = check_task(spec, photos=FACES[:2], check_result=lambda r: None, onnx=False)
    assert [r.model for r in results] == ["toy/test_resnet"] * 2


def torch_style_metrics(predictions, targets, config):
    return {"accuracy": (predictions.argmax(dim=1) == targets.argmax(dim=1)).float().mean().item()}


@dataclasses.dataclass(frozen=True, kw_only=True)
class PairResult(facezoo.FaceResult):
    """A result whose own to_dict forgets that JSON has no tuples."""

    pair: tuple[float, float]

    def to_dict(self) -> dict:
        return {**super().to_dict(), "pair": self.pair}


def postprocess_pairs(outputs, crops, config):
    return [PairResult(pair=(float(a), float(b))) for a, b in outputs.tolist()]


BROKEN = {
    "torch-style metrics on numpy": (
        {"metrics": torch_style_metrics},
        check_metrics,
        r"task 'toy': metrics\(predictions, targets, config\) on numpy arrays raised TypeError",
    ),
    "numpy float32 metric": (
        {"metrics": lambda p, t, c: {"accuracy": np.float32(0.5)}},
        check_metrics,
        r"task 'toy': metrics must map names to finite Python floats; these are not: \{'accuracy'",
    ),
    "decode outside the training-target space": (
        {"decode": lambda outputs, config: outputs[:, 1]},
        check_metrics,
        r"task 'toy': decode gives predictions of shape \(4,\) but the training targets have \(4, 2\)",
    ),
    "no labels, no synthetic targets": ({"labels": ()}, check_metrics, r"task 'toy' has no labels to make synthetic targets from: give its TaskSpec synthetic_targets="),
    "synthetic targets of float64": (
        {"synthetic_targets": lambda n: np.zeros((n, 2))},
        check_metrics,
        r"task 'toy': synthetic targets must be a numpy array of 4 float32 targets or int64 class indices, got ndarray of shape \(4, 2\) and dtype float64",
    ),
    "sample groups of floats": (
        {"sample_groups": lambda targets: targets[:, 0]},
        check_training,
        r"task 'toy': sample_groups must give one whole number per target: 4 targets gave shape \(4,\), dtype float32",
    ),
    "a tuple in to_dict": (
        {"postprocess": postprocess_pairs},
        check_predict,
        r"task 'toy': PairResult.to_dict\(\) changes through JSON \(a tuple, a numpy number or a non-str key\?\)",
    ),
}


@pytest.mark.parametrize(("changes", "check", "message"), BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_task_fails_with_the_task_and_the_step(register, changes, check, message):
    register(**changes)
    model = facezoo.load("toy", "test_resnet", pretrained=False)
    with pytest.raises(AssertionError, match=message):
        check(model, synthetic_photos())


def test_check_result_failures_name_the_task_and_the_result(register):
    register()

    def never(result):
        raise AssertionError("no result is good enough")

    with pytest.raises(AssertionError, match=r"task 'toy': check_result failed on GlassesResult\(.*\): no result is good enough"):
        check_task("toy", check_result=never, onnx=False)


def test_a_spec_that_is_not_the_registered_one_is_refused(register):
    spec = register()
    with pytest.raises(AssertionError, match=r"task 'toy': the TaskSpec given is not the one plugin 'toy-plugin' registered"):
        check_task(dataclasses.replace(spec, summary="another"), onnx=False)
    with pytest.raises(AssertionError, match=r"task 'nobody' is not registered \(tasks: \["):
        check_task("nobody")


def test_onnx_parity_is_a_skip_that_says_why_without_onnxruntime(monkeypatch, tmp_path):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else find_spec(name, *a))
    with pytest.raises(unittest.SkipTest, match=r"task 'glasses': ONNX parity not checked, onnxruntime not installed \(pip install 'facezoo\[onnx\]'\)"):
        check_onnx(facezoo.load("glasses", "test_resnet", pretrained=False), tmp_path)

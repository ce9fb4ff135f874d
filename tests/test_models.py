"""Every registered task on two backbone families: build, forward, predict, save → load, train."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import BACKBONES, FACES, synthetic_targets
from torch import nn

import facezoo


def _check_beauty(r, config):
    assert 1.0 <= r.score <= 5.0
    assert len(r.distribution) == config.head["bins"] and math.isclose(sum(r.distribution), 1.0, abs_tol=1e-3)


def _check_age_gender(r, config):
    assert r.age >= 0.0 and r.gender in config.labels and 0.5 <= r.gender_probability <= 1.0


def _check_keypoints(r, config):
    assert len(r.points) == 68 and all(len(p) == 2 for p in r.points)


def _check_expression(r, config):
    assert list(r.probabilities) == list(config.labels) and r.label == max(r.probabilities, key=r.probabilities.get)
    assert math.isclose(sum(r.probabilities.values()), 1.0, abs_tol=1e-4)


def _check_identity(r, config):
    assert len(r.embedding) == config.head["embedding_dim"]
    assert math.isclose(sum(v * v for v in r.embedding), 1.0, abs_tol=1e-3)


def _check_glasses(r, config):
    assert 0.0 <= r.probability <= 1.0 and r.glasses == (r.probability >= 0.5)


def _numbers(data) -> list[float]:
    """The numbers in a result's ``to_dict()``, in order (to compare results approximately)."""
    if isinstance(data, dict):
        return [v for key in sorted(data) for v in _numbers(data[key])]
    if isinstance(data, list):
        return [v for item in data for v in _numbers(item)]
    return [float(data)] if isinstance(data, (int, float)) else []


CHECKS = {
    "beauty": _check_beauty,
    "age-gender": _check_age_gender,
    "keypoints": _check_keypoints,
    "expression": _check_expression,
    "identity": _check_identity,
    "glasses": _check_glasses,
}
CASES = [(task, backbone) for task in facezoo.list_tasks() for backbone in BACKBONES]


def test_every_task_has_a_result_check():
    assert set(facezoo.list_tasks()) <= set(CHECKS), "add a result check for the new task to CHECKS"


@pytest.mark.parametrize(("task", "backbone"), CASES)
def test_build_forward_predict(task, backbone):
    torch.manual_seed(0)
    model = facezoo.load(task, backbone, pretrained=False)
    config = model.config
    assert (config.model_id, config.trained) == (f"{task}/{backbone}", False)
    height, width = config.preprocess.input_size
    with torch.no_grad():
        outputs = model.network(torch.randn(2, 3, height, width))
    assert outputs.shape[0] == 2 and torch.isfinite(outputs).all()
    if model.task.output_width is not None:  # what an ONNX graph of this model is checked against
        assert math.prod(outputs.shape[1:]) == model.task.output_width(**config.head)

    results = model.predict([str(p) for p in FACES], detect=False)
    assert len(results) == len(FACES) and all(len(faces) == 1 for faces in results)
    for [result] in results:
        assert isinstance(result, facezoo.FaceResult)
        assert (result.model, result.trained, result.face) == (config.model_id, False, None)
        CHECKS[task](result, config)
        shown = repr(result)  # short: embeddings, points and distributions by their length only (to_dict() has them)
        assert shown.startswith(f"{type(result).__name__}(") and shown.endswith(", untrained)") and len(shown) < 200, shown
        data = json.loads(json.dumps(result.to_dict()))
        assert data["trained"] is False and data["model"] == config.model_id
    [single] = model.predict(str(FACES[0]), detect=False)
    # Batch size changes float rounding in the last digits; 0.01 is far below any quantity's meaning
    # (keypoints are pixels, scores and probabilities are in units of 1).
    assert _numbers(single.to_dict()) == pytest.approx(_numbers(results[0][0].to_dict()), abs=1e-2), "batch size changed a result"


@pytest.mark.parametrize(("task", "backbone"), CASES)
def test_save_load_gives_identical_outputs(task, backbone, tmp_path):
    torch.manual_seed(0)
    model = facezoo.load(task, backbone, pretrained=False)
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "config.json", "model.safetensors"]

    torch.manual_seed(1)  # a load that forgot the weights would now differ
    loaded = facezoo.load(str(tmp_path), runtime="torch")
    assert loaded.config == model.config and type(loaded) is type(model) and not loaded.network.training
    batch = model.transform.to_array(model.prepare(FACES[:3], detect=False)[0])
    assert (model.network.run(batch) == loaded.network.run(batch)).all()
    assert [r.to_dict() for r in loaded.predict(FACES[:3], detect=False)[0]] == [r.to_dict() for r in model.predict(FACES[:3], detect=False)[0]]


@pytest.mark.parametrize(("task", "backbone"), CASES)
def test_optimisation_steps_reduce_the_loss(task, backbone):
    torch.manual_seed(0)
    model = facezoo.load(task, backbone, pretrained=False)
    crops, _, _ = model.prepare(FACES, detect=False)
    images = torch.from_numpy(model.transform.to_array(crops))
    targets, loss_args = synthetic_targets(task, model.config.labels, len(images))
    loss_fn = model.task.build_loss(**{**model.config.head, **loss_args})
    network = model.network.train()
    for module in network.modules():
        if isinstance(module, nn.Dropout):
            module.eval()  # the loss of one fixed batch must be comparable from step to step
    optimizer = torch.optim.Adam([*network.parameters(), *loss_fn.parameters()], lr=1e-3)
    losses = []
    for _ in range(8):
        loss = loss_fn(network(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.9 * losses[0], losses

"""Training on 2 processes (gloo, CPU): the summed gradients are the whole batch's, a 2-process run
matches a 1-process run, process 0 alone writes the run, and an interrupted 2-process run
resumes to exactly the weights of an uninterrupted one.

Tolerances: the head stage runs alike in every process, so its history equals one process's
exactly, and the summed gradients equal the whole batch's to float precision. Fine-tuning
differs from one process in three ways: each process's batch norm layers normalise its half of
the batch (PyTorch syncs batch norm on CUDA only), dropout draws other masks for half a batch,
and gradient sums differ from the whole batch's in the last bits, which AdamW (an update of
about lr × sign(gradient)) turns into differences of up to 2 × lr on weights whose gradient is
nearly 0. So after fine-tuning the validation metrics of the two runs agree within 2 % (measured
on this tiny run: within 0.3 %), not the weights bit for bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import facezoo
from facezoo.training import distributed

DATA = Path(os.environ.get("FACEZOO_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
TINY = dict(backbone="test_efficientnet", init="random", input_size=(32, 32), limit=16, batch_size=8,
            head_epochs=2, finetune_epochs=3, test_split=None, head_lr=1e-2, finetune_lr=1e-3)
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA}")


def _gradients(result: str) -> None:
    """In each process: the summed gradient of its half of a batch, against the whole batch's
    (in eval mode: the head's dropout would draw other masks for half a batch)."""
    assert distributed.init_from_environment()
    torch.manual_seed(0)
    model = facezoo.load("beauty", "test_vit", pretrained=False).network.eval()
    loss_fn = facezoo._plugins.registry().get("task", "beauty").build_loss()
    images, targets = torch.randn(6, 3, 112, 112), 1 + 4 * torch.rand(6)
    loss_fn(model(images), targets).backward()
    whole = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    rank, size = distributed.world()
    share = slice(rank, None, size)
    loss_fn(model(images[share]), targets[share]).backward()
    distributed.sum_gradients(list(model.parameters()), len(targets[share]) / len(targets))
    worst = max(float((p.grad - w).abs().max() / w.abs().max().clamp_min(1e-12)) for p, w in zip(model.parameters(), whole, strict=True))
    Path(f"{result}.{rank}").write_text(json.dumps({"worst": worst, "size": size}))
    distributed.leave()


def test_summed_gradients_of_half_batches_are_the_whole_batch_gradient(tmp_path):
    distributed.launch(2, _gradients, str(tmp_path / "result"))
    for rank in (0, 1):
        result = json.loads((tmp_path / f"result.{rank}").read_text())
        assert result["size"] == 2 and result["worst"] < 1e-4, result


def _history(run: Path) -> list[dict]:
    return json.loads((run / "training" / "history.json").read_text())


def _train_command(out: Path, nproc: int, **settings) -> list[str]:
    options = {**TINY, **settings}
    command = [sys.executable, "-m", "facezoo", "train", "beauty", "--dataset", "scut-fbp5500", "--output", str(out), "--data", str(DATA), "--nproc", str(nproc)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        command += [flag, *map(str, value)] if isinstance(value, tuple) else [flag, "none" if value is None else str(value)]
    return command


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _assert_close_to_one_process(one: Path, two: Path) -> None:
    a, b = _history(one), _history(two)
    assert [(r["stage"], r["epoch"]) for r in a] == [(r["stage"], r["epoch"]) for r in b]
    for x, y in zip(a, b, strict=True):
        metrics = [k for k in x if k.startswith("val_")]
        if x["stage"] == "head":  # the same sums in another order: equal to float32 rounding, whatever the threads
            assert {k: y[k] for k in [*metrics, "train_loss"]} == pytest.approx({k: x[k] for k in [*metrics, "train_loss"]}, rel=1e-5)
        else:
            for k in metrics:
                assert y[k] == pytest.approx(x[k], rel=0.02, abs=1e-3), (x["epoch"], k)


@needs_data
@pytest.mark.parametrize("freeze", [0, 2], ids=["fine-tune-all", "frozen-stages"])
def test_two_processes_match_one(freeze, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    one = facezoo.train("beauty", "scut-fbp5500", output_dir=tmp_path / "one", data_root=DATA, progress=False, freeze=freeze, **TINY)
    stdout = _run(_train_command(tmp_path / "two", 2, freeze=freeze))
    assert stdout == f"model written to {tmp_path / 'two'}\n", "process 0 alone reports"
    _assert_close_to_one_process(one, tmp_path / "two")
    model = facezoo.load(str(tmp_path / "two"))
    assert model.config.trained and model.config.model_id == facezoo.load(str(one)).config.model_id


@needs_data
def test_interrupted_two_process_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    _run(_train_command(tmp_path / "straight", 2))
    assert _run([*_train_command(tmp_path / "resumed", 2), "--stop-after", "1"]) == f"stopped; run the same command to resume {tmp_path / 'resumed'}\n"
    assert [r["stage"] for r in _history(tmp_path / "resumed")] == ["head", "head", "finetune"]
    _run(_train_command(tmp_path / "resumed", 2))
    a, b = load_file(str(tmp_path / "straight" / "model.safetensors")), load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_more_processes_than_faces_per_batch_is_refused(tmp_path, monkeypatch):
    if not DATA.is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    done = subprocess.run(_train_command(tmp_path / "run", 2, batch_size=1, head_epochs=0), capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and "2 processes split each batch of 1 faces" in done.stderr

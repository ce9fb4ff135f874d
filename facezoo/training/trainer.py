"""The trainer: ``train`` (settings → data → loop → measured model directory) and ``export``."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import _onnx, _plugins
from .._backbone import imagenet_weights, load_imagenet
from .._evaluate import evaluate
from .._factory import build_model, load_directory, new_config
from .._model_dir import read_config, write_model_dir
from .._preprocess import FaceTransform
from ..data import load_dataset
from ..data.arrays import face_arrays
from ..errors import DatasetError, FacezooError
from ..onnx_export import quantize_int8
from . import distributed
from .card import TensorBoardCurves, plot_history, training_card
from .data import Source, TrainingData, licence_of, training_data
from .loop import Loop
from .run import RunDirectory
from .settings import TrainSettings

logger = logging.getLogger(__name__)


def check_settings(settings: TrainSettings) -> None:
    """Fail before any work if a dataset, split or teacher of the run does not exist (or does not fit)."""
    registry = _plugins.registry()
    task = registry.get("task", settings.task, hint="See facezoo list tasks")

    def check(name: str, split: str | None, role: str) -> None:
        spec = registry.get("dataset", name, hint=f"({role}) See facezoo list datasets")
        if split is not None and spec.splits and split not in spec.splits:
            raise DatasetError(f"{role}: dataset {name!r} has no split {split!r}; valid: {', '.join(spec.splits)}")

    check(settings.dataset, settings.train_split, "training data")
    for text in settings.extra_data:
        source = Source.parse(text)
        check(source.dataset, source.split, "extra data")
    if settings.val:
        source = Source.parse(settings.val)
        check(source.dataset, source.split, "validation data")
    if settings.test_split is not None:
        check(settings.test_dataset or settings.dataset, settings.test_split, "test data")
    if settings.balance and task.sample_groups is None:
        raise FacezooError(f"balance={settings.balance}: task {task.name!r} does not group its faces (TaskSpec.sample_groups); train with balance 0")
    if settings.teacher is not None:
        teacher = registry.get("teacher", settings.teacher, hint="See facezoo list teachers")
        if teacher.task != task.name:
            raise FacezooError(f"teacher {settings.teacher!r} labels task {teacher.task!r}, not {task.name!r}")


def _init_weights(settings: TrainSettings, config):
    if settings.init == "random":
        return config, None
    weights = imagenet_weights(config.backbone, None if settings.init == "imagenet" else settings.init)
    return config.replace(preprocess={"mean": weights.mean, "std": weights.std}), weights


def lineage(settings: TrainSettings) -> dict[str, Any]:
    """The terms, datasets and teachers a model learns from: its sources and teacher, and those of
    the model whose backbone it starts from (``init`` = a facezoo model directory)."""
    sources = [Source(settings.dataset, settings.train_split), *map(Source.parse, settings.extra_data)]
    terms = [licence_of(sources, settings.teacher)]
    datasets = [s.dataset for s in sources]
    teachers = [settings.teacher] if settings.teacher else []
    if Path(settings.init).is_dir():
        start = read_config(settings.init)
        terms.append(f"its starting backbone, from {start.model_id}: {start.license}")
        datasets += start.datasets
        teachers += start.teachers
    return {"license": "; ".join(terms), "datasets": tuple(dict.fromkeys(datasets)), "teachers": tuple(dict.fromkeys(teachers))}


def _validation(settings: TrainSettings, train: TrainingData, make) -> tuple[TrainingData, TrainingData, str]:
    spec = _plugins.registry().get("dataset", settings.dataset)
    limit = max(8, settings.limit // 4) if settings.limit else None
    if settings.val:
        source = Source.parse(settings.val)
        return train, make([Source(source.dataset, source.split, limit or source.limit)]), settings.val
    if "val" in spec.splits and settings.train_split != "val":
        return train, make([Source(settings.dataset, "val", limit)]), f"{settings.dataset}:val"
    primary = f"{settings.dataset}:{settings.train_split}"
    rows = np.array([i for i, s in enumerate(train.sources) if s == primary])
    order = np.random.default_rng(settings.seed).permutation(rows)
    cut = max(1, int(round(settings.val_fraction * len(rows))))
    held = set(order[:cut].tolist())
    keep = [i for i in range(len(train)) if i not in held]
    return train.subset(keep), train.subset(sorted(held)), f"{settings.val_fraction:.0%} of {primary}"


def train(
    task: str, dataset: str, *, output_dir: str | Path, data_root: str | None = None, stop_after: int | None = None, progress: bool = True,
    tensorboard: str | Path | None = None, **options: Any,
) -> Path:
    """Train ``task`` on a registered ``dataset``; returns the model directory (Hub layout).

    ``options`` are :class:`TrainSettings` fields (``teacher``, ``extra_data``, ``backbone``,
    ``freeze``, ``finetune_epochs``, ...). An interrupted run resumes from its last epoch when
    called again with the same settings; ``stop_after=N`` stops after N fine-tuning epochs of
    this call (call again to continue). ``tensorboard`` is a folder for the training curves as
    TensorBoard scalars, written as each epoch ends (``pip install 'facezoo[tensorboard]'``;
    ``curves.png`` in the run folder is drawn either way). Under ``torchrun`` (or ``facezoo train --nproc``) the
    processes train together (:mod:`facezoo.training.distributed`); process 0 writes the run.

    Example:
        >>> facezoo.train("expression", "fer2013", output_dir="runs/fer", teacher="fer-mini-xception",
        ...               extra_data=["utkface:train"], freeze=4)   # doctest: +SKIP
    """
    settings = TrainSettings(task=task, dataset=dataset, **options)
    check_settings(settings)
    joined = distributed.init_from_environment()
    curves = TensorBoardCurves(tensorboard) if tensorboard is not None and distributed.world()[0] == 0 else None  # before any work: a missing extra fails now
    try:
        return _train(settings, Path(output_dir), data_root, stop_after, progress and distributed.world()[0] == 0, curves)
    finally:
        if curves is not None:
            curves.close()
        if joined:
            distributed.leave()


def _train(settings: TrainSettings, output: Path, data_root: str | None, stop_after: int | None, progress: bool, curves=None) -> Path:
    task = settings.task
    directory = RunDirectory(output, settings.to_json(), defaults=json.loads(TrainSettings(task=task, dataset=settings.dataset).to_json()))
    spec = _plugins.registry().get("task", task)
    config = new_config(task, settings.backbone, **settings.head)
    if settings.preprocess:
        config = config.replace(preprocess=dict(settings.preprocess))
    if settings.input_size:
        config = config.replace(preprocess={"input_size": tuple(settings.input_size)})
    config, weights = _init_weights(settings, config)
    transform = FaceTransform(config.preprocess)

    def make(sources: list[Source], gt_weight: float = settings.gt_weight) -> TrainingData:
        return training_data(
            sources, transform, spec, teacher=settings.teacher, gt_weight=gt_weight, data_root=data_root, seed=settings.seed,
            progress=progress, frame_limit=settings.limit,
        )

    def make_validation(sources: list[Source]) -> TrainingData:
        """Validation measures against the datasets' labels where there are labels (the teacher elsewhere)."""
        return make(sources, gt_weight=1.0)

    sources = [Source(settings.dataset, settings.train_split), *map(Source.parse, settings.extra_data)]
    with distributed.main_first():  # the first process fills the caches, the others read them
        train_data, val_data, val_name = _validation(settings, make(sources), make_validation)
    if settings.limit is not None and settings.limit < len(train_data):
        order = np.random.default_rng(settings.seed).permutation(len(train_data))[: settings.limit]
        train_data = train_data.subset(sorted(order.tolist()))
        val_data = val_data.subset(list(range(min(len(val_data), max(8, settings.limit // 4)))))
    head = spec.fit_head(dict(config.head), train_data.targets.numpy()) if spec.fit_head else dict(config.head)
    config = config.replace(
        head=head,
        tag=settings.tag,
        **lineage(settings),
    )
    torch.manual_seed(settings.seed)
    model = build_model(config)
    model.network.to(memory_format=torch.channels_last)
    if weights is not None:
        load_imagenet(model.network.backbone, weights)
    targets = train_data.targets
    classes = int(targets.max()) + 1 if targets.dtype == torch.int64 and targets.ndim == 1 else None
    loss = spec.make_loss(config.head, num_classes=classes)
    loop = Loop(model, loss, spec, settings, train_data, val_data, directory, progress, curves)
    state = loop.restore()
    loop.stage_head(state)
    finished = loop.stage_finetune(state if state is not None and state["stage"] == "finetune" else None, stop_after)
    if loop.rank != 0:
        return output
    plot_history(loop.history, directory.work / "curves.png")
    if not finished:
        logger.info("stopped after %s fine-tuning epochs; call again to resume", stop_after)
        return output
    model.network.load_state_dict(loop.best[1])
    model.network.eval()
    summary = {
        "machine": _machine(), "train_faces": len(train_data), "val_faces": len(val_data), "validation": val_name,
        "sources": {s: train_data.sources.count(s) for s in dict.fromkeys(train_data.sources)},
    }
    if directory.reschedules():
        summary["reschedules"] = directory.reschedules()
    if spec.calibrate is not None:
        summary["calibrated"] = calibrate(model, settings, data_root, progress)
    model.config = model.config.replace(trained=True)
    report = None
    if settings.test_split:
        report = evaluate(model, settings.test_dataset or settings.dataset, settings.test_split, data_root=data_root)
        model.config = model.config.replace(metrics={k: round(v, 4) for k, v in report.metrics.items()})
        directory.write_json("evaluation.json", report.to_dict())
    directory.write_json("summary.json", summary)
    write_model_dir(output, model.config, model.network.state_dict(), training_card(model.config, settings, loop.history, [report] if report else [], summary))
    return output


def calibrate(model, settings: TrainSettings, data_root: str | None = None, progress: bool = False) -> dict[str, Any]:
    """Fit the task's post-training values (e.g. identity's threshold) on the run's validation
    faces, framed by ``model``'s config; returns them with the faces they were fitted on."""
    spec = _plugins.registry().get("task", settings.task)
    val_source = Source.parse(settings.val) if settings.val else Source(settings.dataset, "val" if "val" in _plugins.registry().get("dataset", settings.dataset).splits else settings.train_split)
    if settings.limit:  # a quick run frames few images
        val_source = Source(val_source.dataset, val_source.split, max(8, settings.limit // 4))
    val_set = val_source.load(data_root, settings.seed)
    updates = spec.calibrate(model, val_set, face_arrays(val_set, model.transform, progress=progress))
    model.config = model.config.replace(head={**model.config.head, **updates})
    return {**updates, "on": str(val_source)}


def export(
    run_dir: str | Path,
    target_dir: str | Path,
    *,
    half: bool = True,
    data_root: str | None = None,
    smoke_limit: int = 300,
    checks: tuple[str, ...] = (),
    onnx: bool = False,
    quantize: str | None = None,
    calibration: int = 300,
) -> Path:
    """Write a finished run's model as it ships, with its card measured on the shipped weights.

    ``half=True`` stores float16 weights; every number is measured on exactly those (cast back to
    float32): the test split through the detector (the headline), the same faces pre-cropped, a
    fixed subset of ``smoke_limit`` samples that CI re-checks (``evaluation["smoke"]`` in
    config.json), the run's teacher side by side on the same faces, and ``checks``: more
    evaluations, ``dataset:split`` against the dataset's labels or ``dataset:split@teacher``
    against a teacher's labels (e.g. ``lfw:view2@dlib-68``).

    ``onnx=True`` exports the network to ``model.onnx`` in ``target_dir`` (so that the model runs
    without torch; half-precision weights stay half in it), checks it against torch on real test
    faces and re-measures the test split on it; ``quantize="int8"`` adds
    ``model.int8.onnx`` (static QDQ, calibrated on ``calibration`` training faces), shipped only if
    it loses no more than the task's ``tolerances`` on the test split.

    Example:
        >>> export("runs/beauty", "plugins/facezoo_beauty/weights/efficientnet_lite0.scut5500")  # doctest: +SKIP
    """
    run = Path(run_dir)
    settings = TrainSettings.from_json((run / "training" / "settings.json").read_text())
    history = json.loads((run / "training" / "history.json").read_text())
    summary = json.loads((run / "training" / "summary.json").read_text())
    model = load_directory(run)
    model.config = model.config.replace(**lineage(settings))
    if half:
        model.network.half().float().eval()
    if not settings.test_split:
        raise FacezooError(f"{run} was trained without a test split: nothing to measure the shipped model on")
    if quantize not in (None, "int8") or (quantize and not onnx):
        raise FacezooError("quantize must be 'int8', together with onnx=True")
    reports = measure(model, settings, target_dir, half=half, data_root=data_root, smoke_limit=smoke_limit, checks=checks, onnx=onnx, quantize=quantize, calibration=calibration)
    _plugins.forget_models()  # a model exported into a plugin's weights folder is registered now: its card says so
    card = training_card(model.config, settings, history, reports, summary)
    # The weights stay as measure() wrote them, byte for byte: the ONNX files are stamped with their digest.
    return write_model_dir(target_dir, model.config, None, card)


def measure(
    model,
    settings: TrainSettings,
    target_dir: str | Path,
    *,
    half: bool = True,
    data_root: str | None = None,
    smoke_limit: int = 300,
    checks: tuple[str, ...] = (),
    onnx: bool = False,
    quantize: str | None = None,
    calibration: int = 300,
    weights: bool = True,
) -> list:
    """Measure ``model`` as :func:`export` describes, write it to ``target_dir`` with its
    ``metrics`` and ``evaluation`` (and, with ``onnx``, the int8 model) and return the reports,
    the headline first; the card is the caller's. ``weights=False`` keeps the weights file that
    ``target_dir`` holds (the model's own)."""
    test = settings.test_dataset or settings.dataset
    headline = evaluate(model, test, settings.test_split, data_root=data_root, compare_teacher=settings.teacher if _teacher_scores(test, settings) else None)
    reports = [headline]
    if test in _plugins.registry().names("dataset") and _plugins.registry().get("dataset", test).evaluate is None:
        reports.append(evaluate(model, test, settings.test_split, data_root=data_root, detect=False))
    for check in checks:
        name, _, teacher = check.partition("@")
        source = Source.parse(name)
        reports.append(evaluate(model, load_dataset(source.dataset, source.split, data_root), teacher=teacher or None, limit=source.limit))
    smoke = evaluate(model, test, settings.test_split, data_root=data_root, limit=smoke_limit)
    evaluation = {
        "dataset": test,
        "split": settings.test_split,
        "protocol": headline.protocol,
        "count": headline.count,
        "detected": headline.extra.get("detected"),
        "smoke": {"limit": smoke_limit, "metrics": {k: round(v, 6) for k, v in smoke.metrics.items()}},
        "checks": {f"{r.dataset}/{r.split}: {r.protocol}": {k: round(v, 4) for k, v in r.metrics.items()} for r in reports[1:]},
    }
    if "side_by_side" in headline.extra:
        side = headline.extra["side_by_side"]
        evaluation["teacher"] = {
            "faces": side["faces"],
            "student": {k: round(v, 4) for k, v in side["student"].items()},
            "teacher": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in side["teacher"].items()},
        }
    target = Path(target_dir)
    model.config = model.config.replace(metrics={k: round(v, 4) for k, v in headline.metrics.items()}, evaluation=evaluation)
    write_model_dir(target, model.config, model.network.state_dict() if weights else None, "", half=half)
    if onnx:
        evaluation["onnx"] = _export_onnx(model, target, settings, headline, quantize, calibration, data_root)
        model.config = model.config.replace(evaluation=evaluation)
    return reports


def _export_onnx(model, target: Path, settings: TrainSettings, headline, quantize, calibration: int, data_root) -> dict:
    """The ONNX export (cached) and ``model.int8.onnx`` (in ``target``), checked and measured on the test split."""
    test = settings.test_dataset or settings.dataset
    digest = _onnx.weights_digest(target)
    check = face_arrays(Source(test, settings.test_split, 64).load(data_root, settings.seed), model.transform, progress=False).images
    path = _onnx.export_network(model, target / _onnx.ONNX_NAME, check_faces=check)
    _onnx.write_stamp(path, digest, quantize=None)
    onnx_model = build_model(model.config, _onnx.OnnxNetwork(path))
    report = evaluate(onnx_model, test, settings.test_split, data_root=data_root)
    out: dict[str, Any] = {"opset": _onnx.OPSET, "fp32": {k: round(v, 4) for k, v in report.metrics.items()}}
    if quantize == "int8":
        faces = face_arrays(Source(settings.dataset, settings.train_split, calibration).load(data_root, settings.seed), model.transform, progress=False).images
        int8 = quantize_int8(model, path, target / _onnx.INT8_NAME, faces)
        _onnx.write_stamp(int8, digest, quantize="int8", calibration=f"{calibration} faces of {settings.dataset}:{settings.train_split}")
        measured = evaluate(build_model(model.config, _onnx.OnnxNetwork(int8)), test, settings.test_split, data_root=data_root).metrics
        losses = {
            name: (headline.metrics[name] - measured[name]) if mode == "max" else (measured[name] - headline.metrics[name])
            for name, mode, _ in model.task.tolerances
            if name in measured
        }
        kept = all(losses[name] <= amount for name, _, amount in model.task.tolerances if name in losses)
        out["int8"] = {"metrics": {k: round(v, 4) for k, v in measured.items()}, "loss": {k: round(v, 4) for k, v in losses.items()}, "kept": kept}
        if not kept:
            int8.unlink()
            int8.with_name(int8.name + ".json").unlink()
    return out


def _teacher_scores(test: str, settings: TrainSettings) -> bool:
    return settings.teacher is not None and _plugins.registry().get("dataset", test).evaluate is None


def _machine() -> dict[str, Any]:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "gpu": gpu}

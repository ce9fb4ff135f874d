"""``facezoo.train``: two-stage transfer learning on CPU, resumable and deterministic.

Stage 1 freezes the backbone: its features are computed once (plus those of the mirrored faces)
and the head trains on them in seconds. Stage 2 fine-tunes the whole network at a lower learning
rate with flips and small affine moves. Every epoch is checkpointed in ``OUTPUT/training/``; the
same call resumes an interrupted run and gives the same weights as an uninterrupted one. The
output is a model directory in Hub layout whose card holds the test-split evaluation.

Example:
    >>> facezoo.train("beauty", "scut-fbp5500", output_dir="runs/beauty")   # doctest: +SKIP
    PosixPath('runs/beauty')
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from . import _plugins
from ._backbone import imagenet_weights, load_imagenet
from ._factory import build_model, new_config
from ._hub import save_model
from .data import FaceDataset, load_dataset
from .data.arrays import face_arrays
from .errors import FacezooError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """Everything that determines a training run (saved as ``training/settings.json``)."""

    task: str
    dataset: str
    backbone: str | None = None
    train_split: str = "train"
    val_split: str | None = None  # None: hold out val_fraction of the training split
    val_fraction: float = 0.1
    test_split: str | None = "test"
    test_dataset: str | None = None  # default: the training dataset
    init: str = "imagenet"  # "imagenet", "random", or a .safetensors file of backbone weights
    input_size: tuple[int, int] | None = None
    head: dict[str, Any] = field(default_factory=dict)
    head_epochs: int = 20
    finetune_epochs: int = 10
    batch_size: int = 64
    head_lr: float = 3e-3
    finetune_lr: float = 5e-4
    weight_decay: float = 1e-4
    augment: bool = True
    detect: bool = False  # crop faces with the model's detector, as in inference (else: pre-cropped images)
    limit: int | None = None  # at most this many training samples (quick runs, tests)
    seed: int = 0
    tag: str | None = None


def _split(settings: TrainSettings, data_root) -> tuple[FaceDataset, FaceDataset]:
    train = load_dataset(settings.dataset, settings.train_split, data_root)
    if settings.val_split:
        val = load_dataset(settings.dataset, settings.val_split, data_root)
    else:
        order = np.random.default_rng(settings.seed).permutation(len(train))
        cut = max(1, int(round(settings.val_fraction * len(train))))
        val, train = train.subset(sorted(order[:cut].tolist())), train.subset(sorted(order[cut:].tolist()))
        val.split = f"{settings.train_split} (held-out {settings.val_fraction:.0%})"
    if settings.limit is not None:
        order = np.random.default_rng(settings.seed).permutation(len(train))[: settings.limit]
        train = train.subset(sorted(order.tolist()))
        val = val.subset(list(range(min(len(val), max(8, settings.limit // 4)))))
    return train, val


def _class_weights(targets: torch.Tensor, classes: int) -> list[float]:
    """Inverse-square-root frequency weights, mean 1 (softer than inverse frequency)."""
    counts = torch.bincount(targets, minlength=classes).float().clamp(min=1)
    weights = counts.rsqrt()
    return [round(float(w), 4) for w in weights / weights.mean()]


def _augment(images: torch.Tensor, targets: torch.Tensor, task, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random horizontal flips and small scale/rotation/shift moves, with targets moved along."""
    n = images.shape[0]
    flip = torch.rand(n, generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    scale = 1.0 + (torch.rand(n, generator=generator) - 0.5) * 0.2
    angle = (torch.rand(n, generator=generator) - 0.5) * math.radians(20)
    shift = (torch.rand(n, 2, generator=generator) - 0.5) * 0.12
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if task.augment_targets is not None:
        targets = task.augment_targets(targets, flip, theta)
    return images.contiguous(memory_format=torch.channels_last), targets


def _batches(n: int, batch_size: int, generator: torch.Generator, drop_last: bool):
    order = torch.randperm(n, generator=generator)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    return [order[i : i + batch_size] for i in range(0, stop, batch_size)]


class RunDirectory:
    """The ``training/`` folder of a run: a guard against mixing settings, an atomic checkpoint
    written after every epoch, and the history of per-epoch metrics."""

    def __init__(self, output: Path, settings_json: str):
        self.output, self.work, self.settings_json = output, output / "training", settings_json

    def open(self) -> dict | None:
        """Record the settings (refusing others) and return the last checkpoint, if any."""
        state_file, settings_file = self.work / "state.pt", self.work / "settings.json"
        if settings_file.exists() and settings_file.read_text() != self.settings_json:
            raise FacezooError(
                f"{self.output} holds a run with other settings ({settings_file}); use another output directory "
                "or delete that one to start afresh"
            )
        self.work.mkdir(parents=True, exist_ok=True)
        settings_file.write_text(self.settings_json)
        if not state_file.exists():
            return None
        # Our own checkpoint, read with the restricted (weights-only) unpickler.
        return torch.load(state_file, map_location="cpu", weights_only=True)

    def save(self, state: dict[str, Any], history: list[dict[str, Any]]) -> None:
        tmp = self.work / "state.pt.tmp"
        torch.save(state, tmp)
        tmp.replace(self.work / "state.pt")
        (self.work / "history.json").write_text(json.dumps(history, indent=1))

    def history(self) -> list[dict[str, Any]]:
        return json.loads((self.work / "history.json").read_text())


class _Run:
    """State of one training run: model, loss, data, history; checkpointed after every epoch."""

    def __init__(self, settings: TrainSettings, output_dir: Path, data_root, progress: bool):
        self.settings, self.output, self.progress = settings, output_dir, progress
        self.work = output_dir / "training"
        self.directory = RunDirectory(output_dir, json.dumps(dataclasses.asdict(settings), sort_keys=True, default=list))
        registry = _plugins.registry()
        self.task = registry.get("task", settings.task)
        self.train_set, self.val_set = _split(settings, data_root)
        config = new_config(settings.task, settings.backbone, **settings.head)
        if settings.input_size:
            config = config.replace(preprocess={"input_size": tuple(settings.input_size)})
        weights = None
        if settings.init == "imagenet" or settings.init.endswith(".safetensors"):
            weights = imagenet_weights(config.backbone, None if settings.init == "imagenet" else settings.init)
            config = config.replace(preprocess={"mean": weights.mean, "std": weights.std})
        elif settings.init != "random":
            raise FacezooError(f"init must be 'imagenet', 'random' or a .safetensors file, got {settings.init!r}")
        self.transform_config = config
        probe = build_model(config)
        detector = config.preprocess.detector if settings.detect else None
        self.train_x, self.train_y, _ = face_arrays(self.train_set, probe.transform, self.task, detector=detector, progress=progress)
        self.val_x, self.val_y, _ = face_arrays(self.val_set, probe.transform, self.task, detector=detector, progress=progress)
        head = dict(config.head)
        if "class_weights" in head and head["class_weights"] is None and self.train_y.dtype == torch.int64:
            head["class_weights"] = _class_weights(self.train_y, len(config.labels) or int(self.train_y.max()) + 1)
        if self.train_set.labels and not config.labels:
            config = config.replace(labels=tuple(self.train_set.labels))
        self.config = config.replace(
            head=head,
            tag=settings.tag,
            license=self.train_set.license or None,
            datasets=(self.train_set.name,),
        )
        torch.manual_seed(settings.seed)
        self.model = build_model(self.config).to(memory_format=torch.channels_last)
        if weights is not None:
            load_imagenet(self.model.backbone, weights)
        loss_options = {"num_classes": len(self.train_set.labels) or None, **self.config.head}
        self.loss = self.task.build_loss(**loss_options)
        self.history: list[dict[str, Any]] = []
        self.best: tuple[float, dict[str, torch.Tensor]] | None = None
        self.done = {"head": 0, "finetune": 0}

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, optimizer, scheduler, stage: str) -> None:
        state = {
            "model": self.model.state_dict(),
            "loss": self.loss.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler else {},
            "stage": stage,
            "done": dict(self.done),
            "best_value": self.best[0] if self.best else None,
            "best_state": self.best[1] if self.best else {},
        }
        self.directory.save(state, self.history)

    def restore(self) -> dict | None:
        state = self.directory.open()
        if state is None:
            return None
        self.model.load_state_dict(state["model"])
        self.loss.load_state_dict(state["loss"])
        self.done = state["done"]
        if state["best_value"] is not None:
            self.best = (state["best_value"], state["best_state"])
        self.history = self.directory.history()
        logger.info("resuming %s after %s", self.output, self.done)
        return state

    # -- evaluation --------------------------------------------------------------------------
    def _score(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            metrics = {"loss": float(self.loss(outputs, targets))}
        if self.task.metrics is not None:
            metrics.update(self.task.metrics(outputs, targets, self.config))
        return metrics

    def _monitor(self, metrics: dict[str, float]) -> float:
        name, mode = self.task.monitor
        value = metrics.get(name, metrics["loss"])
        return value if mode == "max" and name in metrics else -value

    def _record(self, stage: str, epoch: int, train_loss: float, val: dict[str, float], seconds: float) -> None:
        row = {"stage": stage, "epoch": epoch, "train_loss": train_loss, **{f"val_{k}": v for k, v in val.items()}, "seconds": round(seconds, 1)}
        self.history.append(row)
        score = self._monitor(val)
        if self.best is None or score > self.best[0]:
            self.best = (score, {k: v.detach().clone() for k, v in self.model.state_dict().items()})
        logger.info("%s", row)
        if self.progress:
            tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))

    # -- stage 1: head on cached features ------------------------------------------------------
    @torch.inference_mode()
    def _features(self, images: torch.Tensor, flip: bool = False) -> torch.Tensor:
        self.model.eval()
        out = []
        for start in range(0, len(images), 256):
            batch = self.model.transform.normalize(images[start : start + 256])
            batch = batch.flip(-1) if flip else batch
            out.append(self.model.backbone(batch.contiguous(memory_format=torch.channels_last)))
        return torch.cat(out)

    def stage_head(self, state: dict | None) -> None:
        epochs = self.settings.head_epochs
        if self.done["head"] >= epochs:
            return
        feats, targets = self._features(self.train_x), self.train_y
        if self.settings.augment:
            n = len(targets)
            flipped = targets if self.task.augment_targets is None else self.task.augment_targets(
                targets, torch.ones(n, dtype=torch.bool), torch.eye(2, 3).expand(n, 2, 3)
            )
            feats, targets = torch.cat([feats, self._features(self.train_x, flip=True)]), torch.cat([targets, flipped])
        val_feats = self._features(self.val_x)
        params = [*self.model.head.parameters(), *self.loss.parameters()]
        optimizer = torch.optim.AdamW(params, lr=self.settings.head_lr, weight_decay=self.settings.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        if state is not None and state["stage"] == "head":
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        for epoch in range(self.done["head"], epochs):
            start = time.time()
            generator = torch.Generator().manual_seed(self.settings.seed * 1000 + epoch)
            torch.manual_seed(self.settings.seed * 1000 + epoch)
            self.model.head.train()
            total, count = 0.0, 0
            for index in _batches(len(feats), 256, generator, drop_last=True):
                loss = self.loss(self.model.head(feats[index]), targets[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, count = total + loss.item() * len(index), count + len(index)
            scheduler.step()
            self.model.head.eval()
            with torch.no_grad():
                val = self._score(self.model.head(val_feats), self.val_y)
            self.done["head"] = epoch + 1
            self._record("head", epoch + 1, total / max(count, 1), val, time.time() - start)
            self.save(optimizer, scheduler, "head")

    # -- stage 2: fine-tune everything -----------------------------------------------------
    def stage_finetune(self, state: dict | None, stop_after: int | None) -> bool:
        """Returns False when it stopped early because of ``stop_after``."""
        epochs = self.settings.finetune_epochs
        if self.done["finetune"] >= epochs:
            return True
        batch_size = self.settings.batch_size
        steps = epochs * max(1, len(self.train_x) // batch_size)
        params = [*self.model.parameters(), *self.loss.parameters()]
        optimizer = torch.optim.AdamW(params, lr=self.settings.finetune_lr, weight_decay=self.settings.weight_decay)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.settings.finetune_lr, total_steps=steps, pct_start=0.1)
        if state is not None and state["stage"] == "finetune":
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        ran = 0
        for epoch in range(self.done["finetune"], epochs):
            if stop_after is not None and ran >= stop_after:
                return False
            start = time.time()
            generator = torch.Generator().manual_seed(self.settings.seed * 1000 + 500 + epoch)
            torch.manual_seed(self.settings.seed * 1000 + 500 + epoch)
            self.model.train()
            total, count = 0.0, 0
            batches = _batches(len(self.train_x), batch_size, generator, drop_last=True)
            bar = tqdm(batches, desc=f"fine-tune {epoch + 1}/{epochs}", disable=not self.progress, leave=False)
            for index in bar:
                images = self.model.transform.normalize(self.train_x[index])
                targets = self.train_y[index]
                if self.settings.augment:
                    images, targets = _augment(images, targets, self.task, generator)
                loss = self.loss(self.model(images.contiguous(memory_format=torch.channels_last)), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler.last_epoch + 1 < steps:
                    scheduler.step()
                total, count = total + loss.item() * len(index), count + len(index)
                bar.set_postfix(loss=f"{total / count:.4f}")
            val = self._score(self.model.forward_faces(self.val_x), self.val_y)
            self.done["finetune"] = epoch + 1
            self._record("finetune", epoch + 1, total / max(count, 1), val, time.time() - start)
            self.save(optimizer, scheduler, "finetune")
            ran += 1
        return True


def plot_history(history: list[dict[str, Any]], path: Path) -> Path | None:
    """Loss and validation-metric curves as a PNG (needs the ``plot`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("training curves need matplotlib: pip install 'facezoo[plot]'")
        return None
    metrics = sorted({k for row in history for k in row if k.startswith("val_") and k != "val_loss"})
    fig, axes = plt.subplots(1, 1 + len(metrics), figsize=(4 * (1 + len(metrics)), 3.2))
    axes = np.atleast_1d(axes)
    x = np.arange(1, len(history) + 1)
    axes[0].plot(x, [r["train_loss"] for r in history], label="train loss")
    axes[0].plot(x, [r["val_loss"] for r in history], label="val loss")
    for ax, name in zip(axes[1:], metrics):
        ax.plot(x, [r.get(name, np.nan) for r in history])
        ax.set_title(name[4:])
    head_epochs = sum(r["stage"] == "head" for r in history)
    for ax in axes:
        if 0 < head_epochs < len(history):
            ax.axvline(head_epochs + 0.5, color="gray", linestyle=":", label="fine-tune starts")
        ax.set_xlabel("epoch")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def train(
    task: str,
    dataset: str,
    *,
    output_dir: str | Path,
    data_root: str | None = None,
    stop_after: int | None = None,
    progress: bool = True,
    **options: Any,
) -> Path:
    """Train ``task`` on a registered ``dataset``; returns the model directory (Hub layout).

    ``options`` are :class:`TrainSettings` fields (``backbone``, ``head_epochs``,
    ``finetune_epochs``, ``batch_size``, ``finetune_lr``, ``input_size``, ``seed``, ``tag``, ...).
    An interrupted run resumes from its last epoch when called again with the same settings;
    ``stop_after=N`` stops after N fine-tuning epochs of this call (resume later).

    Example:
        >>> facezoo.train("expression", "fer2013", output_dir="runs/fer", val_split="val",
        ...               backbone="efficientnet_lite0", finetune_epochs=8)   # doctest: +SKIP
    """
    settings = TrainSettings(task=task, dataset=dataset, **options)
    output = Path(output_dir)
    run = _Run(settings, output, data_root, progress)
    state = run.restore()
    run.stage_head(state)
    finished = run.stage_finetune(state if state is not None and state["stage"] == "finetune" else None, stop_after)
    plot_history(run.history, run.work / "curves.png")
    if not finished:
        logger.info("stopped after %s fine-tuning epochs; call again to resume", stop_after)
        return output
    run.model.load_state_dict(run.best[1])
    config = run.config.replace(trained=True)
    run.model.config = config
    report = None
    if settings.test_split:
        from ._evaluate import evaluate

        report = evaluate(run.model, settings.test_dataset or settings.dataset, settings.test_split, data_root=data_root, detect=settings.detect)
        config = config.replace(metrics={k: round(v, 4) for k, v in report.metrics.items()})
        run.model.config = config
        (run.work / "evaluation.json").write_text(json.dumps(report.to_dict(), indent=1))
    save_model(run.model, output, card=training_card(config, settings, run.history, report))
    return output


def export(run_dir: str | Path, target_dir: str | Path, *, half: bool = True, data_root: str | None = None, smoke_limit: int = 300) -> Path:
    """Write a finished run's model as it will ship, with its card measured on the shipped weights.

    ``half=True`` stores float16 weights; the evaluation runs on exactly those (cast back to
    float32), on the whole test split and on a fixed subset of ``smoke_limit`` samples that CI
    re-checks (``evaluation["smoke"]`` in config.json).

    Example:
        >>> export("runs/beauty", "plugins/facezoo_beauty/weights/efficientnet_lite0.scut5500")  # doctest: +SKIP
    """
    from ._evaluate import evaluate
    from ._hub import load_model_dir

    run = Path(run_dir)
    settings_data = json.loads((run / "training" / "settings.json").read_text())
    if settings_data.get("input_size"):
        settings_data["input_size"] = tuple(settings_data["input_size"])
    settings = TrainSettings(**settings_data)
    history = json.loads((run / "training" / "history.json").read_text())
    model = load_model_dir(run)
    if half:
        model = model.half().float()
    test = settings.test_dataset or settings.dataset
    report = evaluate(model, test, settings.test_split, data_root=data_root, detect=settings.detect)
    smoke = evaluate(model, test, settings.test_split, data_root=data_root, limit=smoke_limit, detect=settings.detect)
    model.config = model.config.replace(
        metrics={k: round(v, 4) for k, v in report.metrics.items()},
        evaluation={
            "dataset": test,
            "split": settings.test_split,
            "protocol": report.protocol,
            "count": report.count,
            "detect": settings.detect,
            "smoke": {"limit": smoke_limit, "metrics": {k: round(v, 6) for k, v in smoke.metrics.items()}},
        },
    )
    target = Path(target_dir)
    save_model(model, target, card=training_card(model.config, settings, history, report, smoke), half=half)
    return target


def command_line(settings: TrainSettings) -> str:
    """The ``facezoo train`` command that reproduces ``settings``."""
    defaults = TrainSettings(task=settings.task, dataset=settings.dataset)
    parts = ["facezoo train", settings.task, "--dataset", settings.dataset]
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if f.name in ("task", "dataset") or value == getattr(defaults, f.name):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else f"--no-{f.name.replace('_', '-')}")
        elif isinstance(value, (tuple, list)):
            parts += [flag, *map(str, value)]
        elif isinstance(value, dict):
            parts += [flag, json.dumps(value, separators=(",", ":"))]
        else:
            parts += [flag, str(value)]
    return " ".join(parts)


def training_card(config, settings: TrainSettings, history: list[dict[str, Any]], report, smoke=None) -> str:
    """The card of a freshly trained model: recipe, data terms, measured metrics and baselines."""
    from .cards import CardInfo, model_card

    registry = _plugins.registry()
    test_name = settings.test_dataset or settings.dataset
    test_spec = registry.get("dataset", test_name) if test_name in registry.names("dataset") else None
    minutes = sum(r.get("seconds", 0.0) for r in history) / 60
    head_epochs = sum(r["stage"] == "head" for r in history)
    training = (
        f"Backbone `{config.backbone}` initialised from {'ImageNet weights' if settings.init == 'imagenet' else settings.init}; "
        f"{head_epochs} epochs of the head on cached frozen features, then {len(history) - head_epochs} epochs fine-tuning "
        f"the whole network (AdamW, one-cycle, lr {settings.finetune_lr}, batch {settings.batch_size}"
        f"{', flips and small affine moves' if settings.augment else ''}). Best epoch chosen on "
        f"`{settings.val_split or f'{settings.val_fraction:.0%} of {settings.train_split}'}` by {registry.get('task', settings.task).monitor[0]}. "
        f"Training time {minutes:.1f} min on 2 CPU cores.\n\n```\n{command_line(settings)}\n```"
    )
    groups = report.groups if report else {}
    limitations = (
        "Trained and tested on one research dataset's pre-cropped faces; accuracy on other populations, "
        "cameras and crops is unknown (see the per-group metrics). Not for decisions about people."
    )
    if report and groups:
        metric = registry.get("task", settings.task).monitor[0]
        gap = report.largest_gap(metric)
        if gap:
            limitations += f" Largest per-group gap in {metric}: {gap[2]:.3g} ({gap[0]} vs {gap[1]})."
    data = f"`{settings.dataset}` split `{settings.train_split}`. Terms: {config.license or 'see the dataset'}."
    info = CardInfo(
        summary=registry.get("task", settings.task).summary + f", trained by facezoo on {settings.dataset}.",
        intended_use="Research and demos of face analysis; the dataset terms (non-commercial research) apply to these weights.",
        limitations=limitations,
        data=data,
        training=training,
        measured=tuple(report.measured()) + tuple(smoke.measured() if smoke else ()) if report else (),
        baselines=tuple(test_spec.baselines) if test_spec else (),
        groups={g: {k: v for k, v in m.items()} for g, m in groups.items()},
    )
    return model_card(config, info)

"""The training loop: a head on frozen pooled features, then fine-tuning; resumable and deterministic.

Stage 1 trains the head on pooled features of the (frozen) backbone, computed once for every
face and its mirror image. Stage 2 fine-tunes with AdamW and a one-cycle schedule. With
``freeze=K`` the first K backbone stages stay frozen: their output is computed once for each face,
its mirror image and ``views`` randomly moved copies, and each epoch trains only the rest of the
network on those cached maps, several times faster on a CPU. Every epoch is checkpointed in
``OUTPUT/training/``; the best epoch on the validation faces (by the task's ``monitor``) is kept.
With ``balance`` > 0 an epoch draws its faces with replacement, those of rare groups (the task's
``sample_groups``: age bands, expression classes) more often.
On several processes (:mod:`facezoo.training.distributed`) each fine-tuning batch is split
between them and their gradients are summed; everything else runs alike in each process.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import zlib
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from .._backbone import split_backbone
from .._cache import cache_dir
from ..errors import FacezooError
from . import distributed
from .data import TrainingData

logger = logging.getLogger(__name__)

FEATURE_BATCH = 256


def random_moves(n: int, generator: torch.Generator, flip: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(flip, theta)``: random mirror flags and small scale/rotation/shift ``affine_grid`` matrices."""
    if flip is None:
        flip = torch.rand(n, generator=generator) < 0.5
    scale = 1.0 + (torch.rand(n, generator=generator) - 0.5) * 0.2
    angle = (torch.rand(n, generator=generator) - 0.5) * math.radians(20)
    shift = (torch.rand(n, 2, generator=generator) - 0.5) * 0.12
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    return flip, theta


def apply_moves(images: torch.Tensor, targets: torch.Tensor, task, flip: torch.Tensor, theta: torch.Tensor | None):
    """Mirror and move normalised ``N×3×H×W`` images; targets move along (``task.augment_targets``)."""
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    if theta is not None:
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if task.augment_targets is not None:
        theta = theta if theta is not None else torch.eye(2, 3).expand(len(flip), 2, 3)
        targets = task.augment_targets(targets, flip, theta)
    return images.contiguous(memory_format=torch.channels_last), targets


def batches(n: int, batch_size: int, generator: torch.Generator, drop_last: bool, weights: torch.Tensor | None = None) -> list[torch.Tensor]:
    """An epoch's batches of indices into ``n`` faces: a permutation, or with ``weights`` (one per
    face) ``n`` faces drawn with replacement in proportion to them."""
    order = torch.randperm(n, generator=generator) if weights is None else torch.multinomial(weights, n, replacement=True, generator=generator)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    return [order[i : i + batch_size] for i in range(0, stop, batch_size)]


def group_weights(groups: np.ndarray, power: float) -> torch.Tensor:
    """A weight per face: its group's share of the faces to the power ``-power`` (0: all equal;
    1: every group drawn equally often).

    Example:
        >>> group_weights(np.array([0, 0, 0, 1]), 1.0).tolist()
        [1.3333333730697632, 1.3333333730697632, 1.3333333730697632, 4.0]
    """
    _, inverse, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    share = counts[inverse] / len(inverse)
    return torch.from_numpy(share**-power).float()


class Loop:
    """Trains ``model`` (head, then fine-tuning) on ``train``, validating on ``val`` every epoch."""

    def __init__(self, model, loss, task, settings, train: TrainingData, val: TrainingData, directory, progress: bool, curves=None):
        self.model, self.loss, self.task, self.settings = model, loss, task, settings
        self.curves = curves  # a TensorBoardCurves, or None
        self.train_data, self.val_data, self.directory, self.progress = train, val, directory, progress
        self.history: list[dict[str, Any]] = []
        self.best: tuple[float, dict[str, torch.Tensor]] | None = None
        self.done = {"head": 0, "finetune": 0}
        self.rank, self.world = distributed.world()
        self.frozen = self.tail = None
        self.weights = group_weights(task.sample_groups(train.targets.numpy()), settings.balance) if settings.balance else None
        if settings.freeze:
            self.frozen, self.tail = split_backbone(model.network.backbone, settings.freeze)
            for p in self.frozen.parameters():
                p.requires_grad_(False)

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, optimizer, scheduler, stage: str) -> None:
        if self.rank != 0:
            return
        state = {
            "model": self.model.network.state_dict(),
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
        with distributed.main_first():
            state = self.directory.open()
        if state is None:
            return None
        self.model.network.load_state_dict(state["model"])
        self.loss.load_state_dict(state["loss"])
        self.done = state["done"]
        if state["best_value"] is not None:
            self.best = (state["best_value"], state["best_state"])
        self.history = self.directory.history()
        logger.info("resuming %s after %s", self.directory.output, self.done)
        return state

    # -- validation --------------------------------------------------------------------------
    def score(self, outputs, targets: torch.Tensor) -> dict[str, float]:
        metrics: dict[str, float] = {}
        train = self.train_data.targets
        if targets.dtype == train.dtype and targets.shape[1:] == train.shape[1:]:  # labels of another kind (identity ids
            with torch.no_grad():  # where training learns a teacher's embeddings) have no training loss to compare
                metrics["loss"] = float(self.loss(outputs, targets))
        if self.task.metrics is not None:
            predictions = self.task.predictions(outputs.detach().float().cpu().numpy(), self.model.config)
            metrics.update(self.task.metrics(predictions, targets.cpu().numpy(), self.model.config))
        return metrics

    def monitored(self, metrics: dict[str, float]) -> float:
        name, mode = self.task.monitor
        if self.settings.monitor:
            name, _, mode = self.settings.monitor.partition(":")
        if name not in metrics or mode not in ("max", "min"):
            raise FacezooError(
                f"the run monitors {name!r} ({mode or 'no mode'}), but the validation metrics are {sorted(metrics)}: "
                "pass monitor='metric:max' or 'metric:min' (or fix TaskSpec.monitor)"
            )
        return metrics[name] if mode == "max" else -metrics[name]

    def record(self, stage: str, epoch: int, train_loss: float, val: dict[str, float], seconds: float) -> None:
        row = {"stage": stage, "epoch": epoch, "train_loss": train_loss, **{f"val_{k}": v for k, v in val.items()}, "seconds": round(seconds, 1)}
        self.history.append(row)
        score = self.monitored(val)
        if self.best is None or score > self.best[0]:
            self.best = (score, {k: v.detach().clone() for k, v in self.model.network.state_dict().items()})
        if self.rank != 0:
            return
        logger.info("%s", row)
        if self.curves is not None:
            self.curves.write(len(self.history), row)
        if self.progress:
            tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))

    # -- cached features ---------------------------------------------------------------------
    @torch.inference_mode()
    def _map(self, module, images: torch.Tensor, moves=None, dtype=torch.float32) -> torch.Tensor:
        """``module`` over normalised uint8 faces in batches (optionally mirrored/moved first)."""
        module.eval()
        out = []
        for start in range(0, len(images), FEATURE_BATCH):
            batch = self.model.transform.normalize_torch(images[start : start + FEATURE_BATCH])
            if moves is not None:
                flip, theta = moves[0][start : start + FEATURE_BATCH], moves[1]
                batch, _ = apply_moves(batch, torch.zeros(len(batch)), _NoTargets, flip, None if theta is None else theta[start : start + FEATURE_BATCH])
            out.append(module(batch.contiguous(memory_format=torch.channels_last)).to(dtype))
        return torch.cat(out)

    def _views(self, n: int, source: str) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """The fixed (flip, theta) of each view of a source's faces: as is, mirrored, then
        ``views`` random moves (seeded by the run's seed and the source, so runs share them)."""
        generator = torch.Generator().manual_seed(self.settings.seed * 7919 + zlib.crc32(source.encode()))
        views = [(torch.zeros(n, dtype=torch.bool), None)]
        if self.settings.augment:
            views.append((torch.ones(n, dtype=torch.bool), None))
            views += [random_moves(n, generator) for _ in range(self.settings.views)]
        return views

    def _maps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen-stage outputs of every training face in every view (``V×N×C×H×W`` float16) and
        the targets of each view, computed per source once and cached on disk (``$FACEZOO_CACHE/maps``)."""
        data, names = self.train_data, list(dict.fromkeys(self.train_data.sources))
        frozen_hash = hashlib.sha256(b"".join(t.numpy().tobytes() for t in self.frozen.state_dict().values())).hexdigest()[:12]
        maps = targets = None
        for name in names:
            rows = torch.tensor([i for i, s in enumerate(data.sources) if s == name])
            images = data.images[rows]
            views = self._views(len(rows), name)
            digest = hashlib.sha256(images.numpy().tobytes())
            for flip, theta in views:
                digest.update(flip.numpy().tobytes() + (theta.numpy().tobytes() if theta is not None else b""))
            path = cache_dir("maps") / f"{name.replace(':', '-')}-{frozen_hash}-{digest.hexdigest()[:16]}.npy"
            if path.exists():
                part = torch.from_numpy(np.load(path))
            else:
                part = torch.stack([self._map(self.frozen, images, view, torch.float16) for view in views])
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, part.numpy())
                tmp.replace(path)
            if maps is None:
                maps = torch.empty((len(views), len(data), *part.shape[2:]), dtype=torch.float16)
                targets = torch.empty((len(views), *data.targets.shape), dtype=data.targets.dtype)
            maps[:, rows] = part
            for v, (flip, theta) in enumerate(views):
                targets[v, rows] = self._view_targets(data.targets[rows], flip, theta)
        return maps, targets

    def _view_targets(self, targets: torch.Tensor, flip, theta) -> torch.Tensor:
        if self.task.augment_targets is None or (theta is None and not flip.any()):
            return targets
        theta = theta if theta is not None else torch.eye(2, 3).expand(len(flip), 2, 3)
        return self.task.augment_targets(targets, flip, theta)

    # -- stage 1: head on pooled features --------------------------------------------------------
    def stage_head(self, state: dict | None) -> None:
        epochs = self.settings.head_epochs
        if self.done["head"] >= epochs:
            return
        # Unpooled feature maps (spatial heads) are many times the pooled features: kept in float16.
        dtype = torch.float32 if self.task.pooled else torch.float16
        if self.frozen is not None:
            with distributed.main_first():
                maps, view_targets = self._maps()
            self.tail.eval()
            n, feats = maps.shape[1], None
            with torch.inference_mode():
                for v in range(min(2, len(maps))):
                    for i in range(0, n, FEATURE_BATCH):
                        out = self.tail(maps[v, i : i + FEATURE_BATCH].float())
                        if feats is None:
                            feats = torch.empty((min(2, len(maps)) * n, *out.shape[1:]), dtype=dtype)
                        feats[v * n + i : v * n + i + len(out)] = out
            targets = torch.cat(list(view_targets[: min(2, len(maps))]))
        else:
            views = self._views(len(self.train_data), "all")[:2]
            feats = torch.cat([self._map(self.model.network.backbone, self.train_data.images, v, dtype) for v in views])
            targets = torch.cat([self._view_targets(self.train_data.targets, *v) for v in views])
        val_feats = self._map(self.model.network.backbone, self.val_data.images)
        params = [*self.model.network.head.parameters(), *self.loss.parameters()]
        optimizer = torch.optim.AdamW(params, lr=self.settings.head_lr, weight_decay=self.settings.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        if state is not None and state["stage"] == "head":
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        for epoch in range(self.done["head"], epochs):
            start = time.time()
            generator = torch.Generator().manual_seed(self.settings.seed * 1000 + epoch)
            torch.manual_seed(self.settings.seed * 1000 + epoch)
            self.model.network.head.train()
            total, count = 0.0, 0
            weights = None if self.weights is None else self.weights.repeat(len(feats) // len(self.weights))  # a weight per view of a face
            for index in batches(len(feats), 256, generator, drop_last=True, weights=weights):
                loss = self.loss(self.model.network.head(feats[index].float()), targets[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, count = total + loss.item() * len(index), count + len(index)
            scheduler.step()
            self.model.network.head.eval()
            with torch.no_grad():
                val = self.score(self.model.network.head(val_feats), self.val_data.targets)
            self.done["head"] = epoch + 1
            self.record("head", epoch + 1, total / max(count, 1), val, time.time() - start)
            self.save(optimizer, scheduler, "head")

    # -- stage 2: fine-tuning -----------------------------------------------------------------
    def _validate(self, val_maps: torch.Tensor | None) -> dict[str, float]:
        self.model.network.eval()
        if val_maps is None:
            outputs = torch.from_numpy(self.model.forward_faces(self.val_data.images.numpy()))
        else:
            with torch.inference_mode():
                outputs = torch.cat([self.model.network.head(self.tail(val_maps[i : i + FEATURE_BATCH].float())) for i in range(0, len(val_maps), FEATURE_BATCH)])
        return self.score(outputs, self.val_data.targets)

    def stage_finetune(self, state: dict | None, stop_after: int | None) -> bool:
        """Returns False when it stopped early because of ``stop_after``."""
        epochs = self.settings.finetune_epochs
        if self.done["finetune"] >= epochs:
            return True
        batch_size, n = self.settings.batch_size, len(self.train_data)
        if min(batch_size, n) < self.world:
            raise FacezooError(
                f"{self.world} processes split each batch of {min(batch_size, n)} faces: use a batch size (and training set) of at "
                f"least {self.world} faces, or fewer processes"
            )
        steps = epochs * max(1, n // batch_size)
        maps = view_targets = val_maps = None
        if self.frozen is not None:
            with distributed.main_first():
                maps, view_targets = self._maps()
            val_maps = self._map(self.frozen, self.val_data.images, dtype=torch.float16)
        trainable = [p for p in self.model.network.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW([*trainable, *self.loss.parameters()], lr=self.settings.finetune_lr, weight_decay=self.settings.weight_decay)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.settings.finetune_lr, total_steps=steps, pct_start=0.1)
        if state is not None and state["stage"] == "finetune":
            optimizer.load_state_dict(state["optimizer"])
            saved = state["scheduler"]
            if saved["total_steps"] != steps:  # the run was lengthened or shortened: the rest of the cycle follows the new length
                fresh = scheduler.state_dict()
                saved = {**saved, "total_steps": steps, "_schedule_phases": fresh["_schedule_phases"]}
            scheduler.load_state_dict(saved)
        ran = 0
        for epoch in range(self.done["finetune"], epochs):
            if stop_after is not None and ran >= stop_after:
                return False
            start = time.time()
            generator = torch.Generator().manual_seed(self.settings.seed * 1000 + 500 + epoch)
            torch.manual_seed(self.settings.seed * 1000 + 500 + epoch + 7919 * self.rank)  # dropout: each process its own
            self.model.network.train()
            if self.frozen is not None:
                self.frozen.eval()
                view_of = torch.randint(len(maps), (n,), generator=generator)
            total, count = 0.0, 0
            bar = tqdm(batches(n, batch_size, generator, drop_last=True, weights=self.weights), desc=f"fine-tune {epoch + 1}/{epochs}", disable=not self.progress or self.rank != 0, leave=False)
            for batch in bar:
                share = slice(self.rank, None, self.world)  # this process's part of the batch
                index = batch[share]
                if self.frozen is not None:
                    view = view_of[index]
                    outputs = self.model.network.head(self.tail(maps[view, index].float().contiguous(memory_format=torch.channels_last)))
                    targets = view_targets[view, index]
                else:
                    images, targets = self.model.transform.normalize_torch(self.train_data.images[index]), self.train_data.targets[index]
                    if self.settings.augment:
                        flip, theta = random_moves(len(batch), generator)  # drawn for the whole batch, as on one process
                        images, targets = apply_moves(images, targets, self.task, flip[share], theta[share])
                    outputs = self.model.network(images.contiguous(memory_format=torch.channels_last))
                loss = self.loss(outputs, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.world > 1:
                    distributed.sum_gradients([*trainable, *self.loss.parameters()], len(index) / len(batch))
                optimizer.step()
                if scheduler.last_epoch + 1 < steps:
                    scheduler.step()
                total, count = total + loss.item() * len(index), count + len(index)
                bar.set_postfix(loss=f"{total / count:.4f}")
            if self.world > 1:
                distributed.average_buffers(self.model.network)
                total, count = distributed.total(total, count)
            val = self._validate(val_maps)
            self.done["finetune"] = epoch + 1
            self.record("finetune", epoch + 1, total / max(count, 1), val, time.time() - start)
            self.save(optimizer, scheduler, "finetune")
            ran += 1
        return True


class _NoTargets:
    augment_targets = None

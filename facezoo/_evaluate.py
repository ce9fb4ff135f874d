"""``facezoo.evaluate``: a model on a dataset split, by the standard protocol, with per-group metrics.

Example:
    >>> report = facezoo.evaluate(facezoo.load("beauty"), "scut-fbp5500", "test")   # doctest: +SKIP
    >>> report.metrics["pc"]                                                         # doctest: +SKIP
    0.87
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import _plugins
from .cards import Measured
from .data import FaceDataset, load_dataset
from .data.arrays import face_arrays

logger = logging.getLogger(__name__)


@dataclass
class EvalReport:
    """Metrics of one model on one dataset split; ``groups`` maps group name → metrics."""

    model: str
    dataset: str
    split: str
    protocol: str
    count: int
    metrics: dict[str, float]
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("model", "dataset", "split", "protocol", "count", "metrics", "groups", "extra")}

    def measured(self) -> list[Measured]:
        """The metrics as card rows."""
        return [Measured(k, v, self.dataset, self.split, self.protocol) for k, v in self.metrics.items() if k not in ("pairs", "threshold")]

    def largest_gap(self, metric: str) -> tuple[str, str, float] | None:
        """(best group, worst group, difference) for ``metric``; None without groups."""
        values = {g: m[metric] for g, m in self.groups.items() if metric in m}
        if len(values) < 2:
            return None
        hi, lo = max(values, key=values.get), min(values, key=values.get)
        return hi, lo, values[hi] - values[lo]


def _subset(dataset: FaceDataset, limit: int | None, seed: int = 0) -> FaceDataset:
    if limit is None or limit >= len(dataset):
        return dataset
    order = np.random.default_rng(seed).permutation(len(dataset))[:limit]
    return dataset.subset(sorted(order.tolist()))


def evaluate(
    model,
    dataset: str | FaceDataset,
    split: str = "test",
    *,
    data_root: str | None = None,
    batch_size: int = 128,
    limit: int | None = None,
    detect: bool = False,
) -> EvalReport:
    """Evaluate ``model`` on a registered dataset's split (or a :class:`FaceDataset`).

    ``limit`` takes a fixed random subset of that many samples (the same for every call), for
    quick smoke checks. Faces are the dataset's pre-cropped images, prepared by the model's own
    transform; ``detect=True`` runs the model's detector on each image and crops the largest face
    as in inference (``extra["detected"]`` is the share of images where a face was found; the
    others fall back to the whole image). Protocols on pairs (LFW) use the dataset's own evaluation.
    """
    registry = _plugins.registry()
    if isinstance(dataset, str):
        dataset = load_dataset(dataset, split, data_root)
    spec = registry.get("dataset", dataset.name) if dataset.name in registry.names("dataset") else None
    detector = model.config.preprocess.detector if detect else None
    protocol = (f"detect ({detector}, padded crop) → {model.config.preprocess.crop} crop" if detector else "pre-cropped") + (
        f", subset of {limit}" if limit is not None and limit < len(dataset) else ""
    )
    if spec is not None and spec.evaluate is not None:
        metrics = spec.evaluate(model, dataset, batch_size=batch_size, limit=limit, detector=detector)
        return EvalReport(model.config.model_id, dataset.name, dataset.split, metrics.pop("protocol", protocol), int(metrics.get("pairs", len(dataset))), metrics)
    task = model.task
    if task.metrics is None:
        raise ValueError(f"task {task.name!r} defines no per-image metrics; evaluate it on a dataset with its own protocol")
    dataset = _subset(dataset, limit)
    images, targets, found = face_arrays(dataset, model.transform, task, detector=detector, progress=False)
    outputs = model.forward_faces(images, batch_size)
    metrics = task.metrics(outputs, targets, model.config)
    groups = {}
    group_names = dataset.groups
    for group in sorted({g for g in group_names if g is not None}):
        index = torch.tensor([i for i, g in enumerate(group_names) if g == group])
        groups[group] = {**task.metrics(outputs[index], targets[index], model.config), "count": float(len(index))}
    extra: dict[str, Any] = {"detected": float(found.float().mean())} if detector else {}
    if model.config.labels and targets.dtype == torch.int64 and outputs.ndim == 2 and outputs.shape[1] == len(model.config.labels):
        k = len(model.config.labels)
        confusion = torch.zeros(k, k, dtype=torch.int64)
        confusion.index_put_((targets, outputs.argmax(1)), torch.ones_like(targets), accumulate=True)
        extra["confusion_matrix"] = {"labels": list(model.config.labels), "rows_true_cols_pred": confusion.tolist()}
    return EvalReport(model.config.model_id, dataset.name, dataset.split, protocol, len(dataset), metrics, groups, extra)

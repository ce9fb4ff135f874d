"""SCUT-FBP5500 adapter: official 60/40 split and 5-fold cross-validation files."""

from __future__ import annotations

from pathlib import Path

from facezoo.data import FaceDataset, Sample, require

LAYOUT = "scut-fbp5500/Images/{AF,AM,CF,CM}<n>.jpg and scut-fbp5500/train_test_files/... (official release layout)"
SPLITS = ("train", "test") + tuple(f"fold{k}-{part}" for k in range(1, 6) for part in ("train", "test"))
GROUPS = {"AF": "asian-female", "AM": "asian-male", "CF": "caucasian-female", "CM": "caucasian-male"}
LICENSE = "SCUT-FBP5500: non-commercial research use only (Liang et al., ICPR 2018)"


def split_file(root: Path, split: str) -> Path:
    files = root / "train_test_files"
    if split in ("train", "test"):
        return files / "split_of_60%training and 40%testing" / f"{split}.txt"
    fold, part = split[4], split.split("-")[1]
    return files / "5_folders_cross_validations_files" / f"cross_validation_{fold}" / f"{part}_{fold}.txt"


def build(data_root: Path, split: str) -> FaceDataset:
    root = require(data_root / "scut-fbp5500", LAYOUT)
    listing = require(split_file(root, split), LAYOUT)
    samples = []
    for line in listing.read_text().split("\n"):
        if not line.strip():
            continue
        name, score = line.split()
        samples.append(Sample(require(root / "Images" / name, LAYOUT), float(score), GROUPS[name[:2]]))
    return FaceDataset("scut-fbp5500", split, "beauty", samples, license=LICENSE)

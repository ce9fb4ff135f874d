"""Udacity P1 adapter: 68-point CSVs (file name, x0, y0, ..., x67, y67) beside training/ and test/."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from facezoo.data import FaceDataset, Sample, require

LAYOUT = "p1-keypoints/{training,test}/*.jpg with p1-keypoints/{training,test}_frames_keypoints.csv"
FOLDERS = {"train": "training", "test": "test"}
LICENSE = "YouTube Faces frames (non-commercial research), Udacity P1 annotations (MIT code)"


def build(data_root: Path, split: str) -> FaceDataset:
    root = require(data_root / "p1-keypoints", LAYOUT)
    folder = FOLDERS[split]
    table = require(root / f"{folder}_frames_keypoints.csv", LAYOUT)
    samples = []
    with table.open(newline="") as handle:
        rows = csv.reader(handle)
        next(rows)
        for row in rows:
            points = np.asarray(row[1:], dtype=np.float32).reshape(-1, 2)
            samples.append(Sample(root / folder / row[0], points))
    if samples:
        require(samples[0].path, LAYOUT)
    return FaceDataset("p1-keypoints", split, "keypoints", samples, license=LICENSE)

"""UTKFace adapter: labels in file names, fixed 70/10/20 split files of the bundle."""

from __future__ import annotations

import re
from pathlib import Path

from facezoo.data import FaceDataset, Sample, require
from facezoo.errors import DatasetError

LAYOUT = "utkface/UTKFace/<age>_<gender>_<race>_<datetime>.jpg.chip.jpg and utkface/splits/{train,val,test}.txt"
NAME = re.compile(r"^(\d+)_([01])_([0-4])_(\d{17})\.jpg\.chip\.jpg$")
RACES = ("white", "black", "asian", "indian", "other")
GENDERS = ("male", "female")
LICENSE = "UTKFace: non-commercial research use only (Zhang, Song, Qi, CVPR 2017)"


def build(data_root: Path, split: str) -> FaceDataset:
    root = require(data_root / "utkface", LAYOUT)
    names = require(root / "splits" / f"{split}.txt", LAYOUT).read_text().split()
    samples = []
    for name in names:
        match = NAME.match(name)
        if not match:
            raise DatasetError(f"{root / 'splits' / split}.txt lists {name!r}, which is not <age>_<gender>_<race>_<datetime>.jpg.chip.jpg")
        age, gender, race = int(match[1]), int(match[2]), int(match[3])
        samples.append(Sample(root / "UTKFace" / name, (float(age), float(gender)), f"{RACES[race]}-{GENDERS[gender]}"))
    if samples:
        require(samples[0].path, LAYOUT)
    return FaceDataset("utkface", split, "age-gender", samples, labels=GENDERS, license=LICENSE)

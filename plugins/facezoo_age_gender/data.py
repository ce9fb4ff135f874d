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

SCUT_LAYOUT = "scut-fbp5500/Images/{AF,AM,CF,CM}<n>.jpg with the official split files"
SCUT_LICENSE = "SCUT-FBP5500: non-commercial research use only (Liang et al., ICPR 2018)"
SCUT_GROUPS = {"AF": ("asian", 1.0), "AM": ("asian", 0.0), "CF": ("caucasian", 1.0), "CM": ("caucasian", 0.0)}


def build_scut_gender(data_root: Path, split: str) -> FaceDataset:
    """SCUT-FBP5500 faces with gender from the file prefix (age unknown: NaN); ``all`` is every face."""
    root = require(data_root / "scut-fbp5500", SCUT_LAYOUT)
    names = sorted(p.name for p in require(root / "Images", SCUT_LAYOUT).glob("*.jpg"))
    if split != "all":
        listing = root / "train_test_files" / "split_of_60%training and 40%testing" / f"{split}.txt"
        names = [line.split()[0] for line in require(listing, SCUT_LAYOUT).read_text().split("\n") if line.strip()]
    samples = []
    for name in names:
        ethnicity, female = SCUT_GROUPS[name[:2]]
        samples.append(Sample(root / "Images" / name, (float("nan"), female), f"{ethnicity}-{GENDERS[int(female)]}"))
    return FaceDataset("scut-gender", split, "age-gender", samples, labels=GENDERS, license=SCUT_LICENSE)

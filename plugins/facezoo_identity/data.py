"""Identity data: folder-per-person training sets (CelebA subset, Bollywood), the few-shot demo
set, and LFW View 2 as a verification test protocol (never for training)."""

from __future__ import annotations

from pathlib import Path

from facezoo.data import FaceDataset, Sample, image_folder, require
from facezoo.errors import DatasetError

PEOPLE_LAYOUT = "identity/{celeba,bollywood}/<person>/*.jpg"
FEWSHOT_LAYOUT = "identity/fewshot-five/{train,val}/<person>/*.jpg"
LFW_LAYOUT = "lfw/lfw/<Person_Name>/<Person_Name>_NNNN.jpg and lfw/pairs.txt (View 2: header '10 300', then 10 folds of 300 same + 300 different pairs)"
LICENSES = {
    "celeba": "CelebA: non-commercial research use only (Liu et al., ICCV 2015)",
    "bollywood": "Bollywood celebrity faces: web images of public figures, no licence; research use only",
    "fewshot-five": "5 Celebrity Faces (Kaggle): web photos, demo / research use only",
    "lfw": "LFW: research use; image copyrights stay with their owners (Huang et al., 2007)",
}


VAL_PEOPLE = 20  # celeba: the last 20 identities (sorted) are held out for validation and calibration


def build_people(name: str):
    """Folder-per-person identities; for ``celeba``, ``train`` and ``val`` split the people (not photos)."""

    def build(data_root: Path, split: str) -> FaceDataset:
        folder = require(data_root / "identity" / name, PEOPLE_LAYOUT)
        dataset = image_folder(folder, task="identity", split=split)
        dataset.name, dataset.license = name, LICENSES[name]
        if split in ("train", "val") and name == "celeba":
            first_val = len(dataset.labels) - VAL_PEOPLE
            keep = [i for i, s in enumerate(dataset.samples) if (s.target >= first_val) == (split == "val")]
            dataset.samples = [dataset.samples[i] for i in keep]
        return dataset

    return build


def build_fewshot(data_root: Path, split: str) -> FaceDataset:
    folder = require(data_root / "identity" / "fewshot-five" / split, FEWSHOT_LAYOUT)
    dataset = image_folder(folder, task="identity", split=split)
    dataset.name, dataset.license = "fewshot-five", LICENSES["fewshot-five"]
    return dataset


def build_lfw(data_root: Path, split: str) -> FaceDataset:
    """Unique images of the View-2 pairs; ``extra['pairs']`` holds (index_a, index_b, same, fold)."""
    root = require(data_root / "lfw", LFW_LAYOUT)
    lines = require(root / "pairs.txt", LFW_LAYOUT).read_text().split("\n")
    folds, per_fold = (int(v) for v in lines[0].split())
    index: dict[Path, int] = {}
    pairs = []

    def image(person: str, number: str) -> int:
        path = root / "lfw" / person / f"{person}_{int(number):04d}.jpg"
        return index.setdefault(path, len(index))

    for k, line in enumerate(text for text in lines[1:] if text.strip()):
        parts = line.split("\t")
        if len(parts) == 3:
            a, b, same = image(parts[0], parts[1]), image(parts[0], parts[2]), True
        elif len(parts) == 4:
            a, b, same = image(parts[0], parts[1]), image(parts[2], parts[3]), False
        else:
            raise DatasetError(f"{root / 'pairs.txt'} line {k + 2} is not a pair line. Expected layout: {LFW_LAYOUT}")
        pairs.append((a, b, same, k // (2 * per_fold)))
    if len(pairs) != folds * 2 * per_fold:
        raise DatasetError(f"{root / 'pairs.txt'} has {len(pairs)} pairs, its header promises {folds * 2 * per_fold}")
    samples = [Sample(path, -1) for path in index]
    require(samples[0].path, LFW_LAYOUT)
    return FaceDataset("lfw", split, "identity", samples, license=LICENSES["lfw"], extra={"pairs": pairs, "folds": folds})

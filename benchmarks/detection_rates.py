"""How often the framing contract finds a face in each bundle dataset (the table in docs/detection.md).

Runs (or reads from ``$FACEZOO_CACHE/detections``) the built-in models' detection over every
image of each split: MTCNN, score ≥ 0.9, one retry with a 25 % black border.

Example:
    FACEZOO_DATA=../shared/data python benchmarks/detection_rates.py
"""

from __future__ import annotations

from facezoo.config import Preprocess
from facezoo.data import load_dataset
from facezoo.data.detections import dataset_faces

SPLITS = [
    ("scut-fbp5500", ("train", "test")),
    ("lfw", ("view2",)),
    ("p1-keypoints", ("train", "test")),
    ("celeba", ("train", "val")),
    ("bollywood", ("train",)),
    ("utkface", ("train", "val", "test")),
    ("fer2013", ("train", "val", "test")),
]


def main() -> None:
    print("| dataset | split | images | face found |\n|---|---|---|---|")
    for name, splits in SPLITS:
        for split in splits:
            found = dataset_faces(load_dataset(name, split), Preprocess(), progress=False).found
            print(f"| {name} | {split} | {len(found):,} | {found.mean():.1%} |")


if __name__ == "__main__":
    main()

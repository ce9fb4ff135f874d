"""How often the framing contract finds a face in each bundle dataset (the table in docs/detection.md).

Runs (or reads from ``$FACEZOO_CACHE/detections``) the built-in models' detection over every
image of each split: YuNet, score ≥ 0.5, one retry with a 25 % black border; or, with
``--detector mtcnn``, the framing the models had before (MTCNN, score ≥ 0.9).

Example:
    FACEZOO_DATA=../shared/data python benchmarks/detection_rates.py
    FACEZOO_DATA=../shared/data python benchmarks/detection_rates.py --detector mtcnn
"""

from __future__ import annotations

import argparse

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


SCORES = {"yunet": 0.5, "mtcnn": 0.9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", choices=sorted(SCORES), default="yunet")
    detector = parser.parse_args().detector
    framing = Preprocess(detector=detector, min_face_score=SCORES[detector])
    print(f"{detector}, score ≥ {SCORES[detector]}\n| dataset | split | images | face found |\n|---|---|---|---|")
    for name, splits in SPLITS:
        for split in splits:
            found = dataset_faces(load_dataset(name, split), framing, progress=False).found
            print(f"| {name} | {split} | {len(found):,} | {found.mean():.1%} |")


if __name__ == "__main__":
    main()

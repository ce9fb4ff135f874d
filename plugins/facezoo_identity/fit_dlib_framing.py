"""Where facezoo's five landmarks fall in the face box of dlib's HOG detector: how
``identity/dlib_resnet.v1`` starts dlib's 5-point shape predictor from facezoo's detector, measured once.

dlib's network was trained on ``get_face_chip(image, shape, 150, padding=0.25)``, where ``shape``
is its 5-point predictor's eye corners and nose base, found in its HOG detector's box. facezoo
runs that predictor (ported, :mod:`facezoo.detection.shape_predictor`) and its chip; what it
lacks is the HOG box. For each face found by both detectors (YuNet's face as the model's
preprocessing finds it, HOG's box overlapping it by IoU > 0.4), the five landmarks are expressed in
units of the HOG box; their mean is ``LANDMARKS_IN_DLIB_BOX``, from which ``dlib_box`` places a
box on any face facezoo finds.

Measured on every 20th image of CelebA train and every 11th of SCUT-FBP5500 train (558 faces),
never on LFW (test data). Run (training-time extra ``teachers`` for dlib)::

    python -m facezoo_identity.fit_dlib_framing celeba:train:20 scut-fbp5500:train:11

Example:
    >>> template, kept = fit([(image, face)])  # doctest: +SKIP
    >>> template.shape
    (5, 2)
"""

from __future__ import annotations

import argparse

import numpy as np

from facezoo import FacezooError
from facezoo._images import load_image
from facezoo.config import Preprocess
from facezoo.data import load_dataset
from facezoo.data.detections import dataset_faces
from facezoo.detection.boxes import box_iou
from facezoo.results import Face
from facezoo.training.dlib import hog_detector

MIN_IOU = 0.4


def fit(faces: list[tuple[np.ndarray, Face]]) -> tuple[np.ndarray, int]:
    """The mean position of facezoo's landmarks in units of dlib's HOG box, over the ``(RGB image,
    face)`` pairs whose face HOG finds too, and how many those are."""
    hog, points = hog_detector(), []
    for image, face in faces:
        best, best_iou = None, MIN_IOU
        for rect in hog(image, 1):
            box = (rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1)
            if box_iou(box, face.box) > best_iou:
                best, best_iou = box, box_iou(box, face.box)
        if best is not None:
            points.append((np.asarray(face.landmarks, np.float64) - best[:2]) / (best[2] - best[0]))
    if not points:
        raise FacezooError("no face was found by both detectors; pass more or larger images")
    return np.mean(points, 0), len(points)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", help="DATASET:SPLIT:EVERY, e.g. celeba:train:20 (never a test split)")
    parser.add_argument("--data", help="the data root (default: $FACEZOO_DATA)")
    args = parser.parse_args(argv)
    pairs = []
    for source in args.sources:
        name, split, every = source.split(":")
        dataset = load_dataset(name, split, args.data)
        found = dataset_faces(dataset, Preprocess()).faces  # YuNet as every shipped model finds faces
        for i in range(0, len(dataset), int(every)):
            if found[i] is not None:
                pairs.append((np.asarray(load_image(dataset.samples[i].path)), found[i]))
    template, kept = fit(pairs)
    print(f"{kept} of {len(pairs)} faces; facezoo's landmarks in units of dlib's HOG box:\n{np.round(template, 4).tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

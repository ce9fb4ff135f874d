"""Where facezoo's five landmarks fall in dlib's 150 px face chip: the template that frames
faces for ``dlib_resnet`` from facezoo's own detector, measured once.

dlib's network was trained on ``get_face_chip(image, shape, 150, padding=0.25)``, where
``shape`` is its 5-point predictor's eye corners and nose base on its HOG box. facezoo's
detectors give other points (eye centres, nose tip, mouth corners), so the chip is reproduced by
a similarity transform onto where those points lie, on average, in dlib's chips. For each face
found by both, dlib's chip of an image whose pixels hold their own coordinates gives the exact
chip → image map; facezoo's landmarks are mapped into the chip and averaged over the faces whose
points all lie within ``--tolerance`` px of the median.

Measured on 300 faces each of CelebA train (249 kept) and SCUT-FBP5500 train (297 kept), never on
LFW (test data); their mean is ``facezoo.detection.align.DLIB_TEMPLATE_150``, the framing of
``identity/dlib_resnet.v1`` (its card has what it measured). P1's low-resolution training frames
put the points 2–7 px lower and wider, so they were left out.

Run (training-time extra ``teachers`` for dlib)::

    python -m facezoo_identity.fit_dlib_framing --dataset celeba:train --every 18
    python -m facezoo_identity.fit_dlib_framing --dataset scut-fbp5500:train --every 11

Example:
    >>> template, kept = fit(images)  # doctest: +SKIP
    >>> template.shape
    (5, 2)
"""

from __future__ import annotations

import argparse

import numpy as np

from facezoo import FacezooError

CHIP_SIZE, CHIP_PADDING = 150, 0.25


def _chip_to_image(dlib, shape, size: int) -> np.ndarray:
    """The 3×3 affine map from chip pixels to image pixels of dlib's chip for ``shape``
    (an image of at most 255 px, whose coordinates fit in one byte)."""
    if size > 255:
        raise FacezooError(f"fit_dlib_framing reads images up to 255 px (LFW's are 250 or 112), got {size} px")
    rows, cols = np.mgrid[0:size, 0:size]
    coordinates = np.stack([cols, rows, np.zeros_like(cols)], -1).astype(np.uint8)  # each pixel holds its x, y
    chip = dlib.get_face_chip(coordinates, shape, size=CHIP_SIZE, padding=CHIP_PADDING).astype(np.float64)
    cy, cx = np.mgrid[0:CHIP_SIZE, 0:CHIP_SIZE]
    inside = (chip[..., :2] > 1).all(-1) & (chip[..., :2] < size - 2).all(-1)
    design = np.stack([cx[inside], cy[inside], np.ones(inside.sum())], 1)
    solution, *_ = np.linalg.lstsq(design, chip[..., :2][inside], rcond=None)
    return np.vstack([solution.T, [0.0, 0.0, 1.0]])


def fit(images: list[np.ndarray], detector: str = "yunet", tolerance: float = 12.0) -> tuple[np.ndarray, int]:
    """The mean 150 px chip position of ``detector``'s five landmarks, and how many faces it averages."""
    from facezoo._detect import detect_faces
    from facezoo.training.dlib import dlib as dlib_module
    from facezoo.training.dlib import shape_predictor

    dlib = dlib_module()
    hog, predictor = dlib.get_frontal_face_detector(), shape_predictor("shape_predictor_5_face_landmarks.dat")
    points = []
    for image in images:
        faces, boxes = detect_faces(detector, [image], min_score=0.5)[0], list(hog(image, 1))
        if not faces or not boxes:
            continue
        face, box = max(faces, key=lambda f: f.score), max(boxes, key=lambda r: r.area())
        to_chip = np.linalg.inv(_chip_to_image(dlib, predictor(image, box), max(image.shape[:2])))
        points.append((to_chip @ np.c_[np.asarray(face.landmarks, np.float64), np.ones(5)].T).T[:, :2])
    if not points:
        raise FacezooError("no face was found by both detectors; pass more or larger images")
    points = np.array(points)
    keep = np.abs(points - np.median(points, 0)).max(axis=(1, 2)) < tolerance
    return points[keep].mean(0), int(keep.sum())


def main(argv: list[str] | None = None) -> int:
    from PIL import Image

    from facezoo.data import load_dataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="the data root (default: $FACEZOO_DATA)")
    parser.add_argument("--dataset", default="p1-keypoints:train", help="DATASET:SPLIT of the faces to measure on (never a test split)")
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args(argv)
    name, _, split = args.dataset.partition(":")
    files = [s.path for s in load_dataset(name, split or "train", args.data).samples][:: args.every][: args.count]
    template, kept = fit([np.asarray(Image.open(f).convert("RGB")) for f in files])
    print(f"{kept} of {len(files)} faces; facezoo's landmarks in dlib's {CHIP_SIZE} px chip:\n{np.round(template, 2).tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

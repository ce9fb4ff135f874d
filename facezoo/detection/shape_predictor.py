"""dlib's 5-point face shape predictor, ported: the points dlib's face-recognition ResNet was framed by.

dlib's ``shape_predictor_5_face_landmarks.dat`` (Davis E. King, public domain) is a cascade of
regression-tree ensembles (Kazemi & Sullivan, CVPR 2014) that finds the four eye corners and the
base of the nose in a face box of dlib's HOG detector. facezoo runs the same trees in numpy, with
the same arithmetic (float32 shapes summed tree by tree, pixel positions rounded as dlib rounds
them), so that it gives dlib's points exactly; ``facezoo/detection/convert_dlib_shape.py``
converted the trees once (``weights/dlib_shape_predictor_5.safetensors``).

facezoo's detectors give other points (eye centres, nose tip, mouth corners) and other boxes, so the
predictor starts from the box those points imply in dlib's convention
(:data:`LANDMARKS_IN_DLIB_BOX`). A model whose ``preprocess.landmarks`` is ``"dlib-5"`` is aligned
on these points (template ``"dlib-chip"``: dlib's own ``get_face_chip``).

Example:
    >>> predictor = ShapePredictor.pretrained()
    >>> image = np.zeros((200, 200, 3), np.uint8)
    >>> predictor.predict(image, (50, 50, 149, 149)).shape
    (5, 2)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError, WeightsError
from .align import apply_affine, estimate_similarity

#: dlib's 5-point shape predictor's trees, converted by ``convert_dlib_shape.py``.
WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "dlib_shape_predictor_5.safetensors"

#: Where facezoo's five landmarks (YuNet with O-Net points: eye centres, nose tip, mouth corners)
#: lie, on average, in the face box of dlib's HOG detector, in units of the box's side (0 to 1):
#: the mean over 558 faces of CelebA train and SCUT-FBP5500 train found by both detectors
#: (``python -m facezoo_identity.fit_dlib_framing``; never LFW, which is test data).
LANDMARKS_IN_DLIB_BOX = np.array(
    [
        [0.2854, 0.2951],
        [0.7138, 0.2929],
        [0.4964, 0.5594],
        [0.3136, 0.7485],
        [0.6882, 0.7446],
    ],
    dtype=np.float64,
)

_ARRAYS = {"initial": 2, "anchors": 2, "deltas": 3, "features": 4, "thresholds": 3, "leaves": 5}


def dlib_box(landmarks: np.ndarray | Sequence[Sequence[float]]) -> tuple[int, int, int, int]:
    """The square box, in dlib's convention (``left, top, right, bottom``, inclusive), that facezoo's
    five ``landmarks`` imply: where dlib's HOG detector would put it, on average.

    Example:
        >>> dlib_box(LANDMARKS_IN_DLIB_BOX * 100 + 20)
        (20, 20, 119, 119)
    """
    to_image = estimate_similarity(LANDMARKS_IN_DLIB_BOX, landmarks)
    (cx, cy), side = apply_affine([[0.5, 0.5]], to_image)[0], float(np.sqrt(abs(np.linalg.det(to_image[:, :2]))))
    left, top, right, bottom = (math.floor(v + 0.5) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    return left, top, right - 1, bottom - 1


def _similarity_2x2(source: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The linear part of dlib's ``find_similarity_transform`` from ``source`` (P×2) to each of
    ``targets`` (N×P×2): least squares over rotations and a scale (Umeyama's solution in its closed
    form for two dimensions), as float32 (N×2×2)."""
    source, targets = source.astype(np.float64), targets.astype(np.float64)
    source_c, target_c = source - source.mean(0), targets - targets.mean(1, keepdims=True)
    spread = (source_c**2).sum()  # dlib's initial shape is never a single point
    cosine = (source_c * target_c).sum((1, 2)) / spread
    sine = (source_c[:, 0] * target_c[..., 1] - source_c[:, 1] * target_c[..., 0]).sum(1) / spread
    return np.stack([np.stack([cosine, -sine], 1), np.stack([sine, cosine], 1)], 1).astype(np.float32)


class ShapePredictor:
    """A dlib shape predictor (its cascade of regression trees) run in numpy.

    ``predict(image, box)`` gives what dlib's ``shape_predictor(image, rectangle)`` gives on the
    same RGB image and box: the same whole-pixel points.
    """

    def __init__(self, arrays: dict[str, np.ndarray], source: str = "arrays"):
        if set(arrays) != set(_ARRAYS) or any(arrays[k].ndim != n for k, n in _ARRAYS.items()):
            raise WeightsError(f"{source} is not a facezoo shape predictor: it needs the arrays {sorted(_ARRAYS)} (see convert_dlib_shape.py)")
        self.initial = arrays["initial"].astype(np.float32)
        self.anchors = arrays["anchors"].astype(np.intp)
        self.deltas = arrays["deltas"].astype(np.float32)
        features, thresholds, leaves = arrays["features"], arrays["thresholds"], arrays["leaves"]
        levels, trees, count, parts = leaves.shape[:4]
        self.depth = int(np.log2(count))
        splits, pixels = thresholds.shape[2], self.deltas.shape[1]
        if (
            2**self.depth != count
            or splits != count - 1
            or self.initial.shape != (parts, 2)
            or self.anchors.shape != (levels, pixels)
            or features.shape != (levels, trees, splits, 2)
            or thresholds.shape[:2] != (levels, trees)
            or self.anchors.max() >= parts
            or features.max() >= pixels
        ):
            raise WeightsError(f"{source}: its arrays do not form full trees over its feature pixels and shape points")
        # Flat per level (tree t's node n at t * splits + n; its leaf k at t * count + k): np.take is fast.
        self.first = features[..., 0].reshape(levels, -1).astype(np.intp)
        self.second = features[..., 1].reshape(levels, -1).astype(np.intp)
        self.thresholds = thresholds.reshape(levels, -1).astype(np.float32)
        self.leaves = leaves.reshape(levels, trees * count, parts * 2).astype(np.float32)
        self._split_base = np.arange(trees) * splits
        self._leaf_base = np.arange(trees) * count - splits

    @classmethod
    @functools.cache
    def pretrained(cls) -> ShapePredictor:
        """dlib's 5-point predictor as facezoo ships it, loaded once per process."""
        from safetensors.numpy import load_file

        return cls(load_file(str(WEIGHTS_PATH)), source=str(WEIGHTS_PATH))

    def predict(self, image: np.ndarray, box: Sequence[int]) -> np.ndarray:
        """The shape's points (``P×2`` float64, whole pixels) in an RGB ``H×W×3`` uint8 ``image``,
        starting from ``box`` = ``(left, top, right, bottom)``, inclusive, as dlib's rectangles."""
        return self.predict_boxes(image, [box])[0]

    def predict_boxes(self, image: np.ndarray, boxes: Sequence[Sequence[int]]) -> np.ndarray:
        """:meth:`predict` for several boxes of one image at once (``N×P×2``): the faces of a photo
        cost about what one does, since the work is numpy's per-operation overhead."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"the shape predictor reads an RGB H×W×3 uint8 image, got {image.dtype} {image.shape}")
        corners = np.array([[int(v) for v in box] for box in boxes], np.float64).reshape(-1, 4)
        height, width = image.shape[:2]
        pixels = image.reshape(-1, 3)
        size = (corners[:, 2:] - corners[:, :2])[:, None, :]  # N×1×2: right - left, bottom - top
        origin = corners[:, None, :2]
        shape = np.repeat(self.initial[None], len(corners), axis=0)  # N×P×2
        for level in range(len(self.leaves)):
            linear = _similarity_2x2(self.initial, shape)  # N×2×2
            deltas, anchors = self.deltas[level], shape[:, self.anchors[level]]  # F×2, N×F×2
            # float32, operation by operation as dlib computes tform * delta + anchor
            x = linear[:, 0, :1] * deltas[:, 0] + linear[:, 0, 1:] * deltas[:, 1] + anchors[..., 0]
            y = linear[:, 1, :1] * deltas[:, 0] + linear[:, 1, 1:] * deltas[:, 1] + anchors[..., 1]
            column = np.floor(x.astype(np.float64) * size[..., 0] + origin[..., 0] + 0.5).astype(np.intp)
            row = np.floor(y.astype(np.float64) * size[..., 1] + origin[..., 1] + 0.5).astype(np.intp)
            inside = (column >= 0) & (column < width) & (row >= 0) & (row < height)
            values = np.zeros(column.shape, np.float32)
            rgb = pixels.take(row[inside] * width + column[inside], axis=0).astype(np.uint32)
            values[inside] = rgb.sum(1) // 3  # dlib's get_pixel_intensity of an RGB pixel
            node = np.zeros((len(corners), len(self._split_base)), np.intp)
            first, second, thresholds = self.first[level], self.second[level], self.thresholds[level]
            for _ in range(self.depth):
                at = self._split_base + node
                left_branch = np.take_along_axis(values, first.take(at), 1) - np.take_along_axis(values, second.take(at), 1) > thresholds.take(at)
                node = 2 * node + 2 - left_branch  # left child 2n + 1, right child 2n + 2
            steps = self.leaves[level].take(self._leaf_base + node, axis=0)  # N×trees×2P
            # dlib adds the trees' increments one after another in float32: accumulate keeps that order
            start = shape.reshape(len(corners), 1, -1)
            shape = np.add.accumulate(np.concatenate([start, steps], axis=1), axis=1)[:, -1].reshape(shape.shape)
        return np.floor(shape.astype(np.float64) * size + origin + 0.5)

    def shapes(self, image: np.ndarray, landmarks: Sequence[np.ndarray | Sequence[Sequence[float]]]) -> np.ndarray:
        """The shapes (``N×P×2``) of the faces of one image whose facezoo landmarks are ``landmarks``."""
        return self.predict_boxes(image, [dlib_box(points) for points in landmarks])

    def __call__(self, image: np.ndarray, landmarks: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """The shape of the face whose facezoo landmarks are ``landmarks`` (from :func:`dlib_box`)."""
        return self.shapes(image, [landmarks])[0]

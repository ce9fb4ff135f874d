"""Face detection and alignment.

``YuNet``, ``MTCNN`` and ``ShapePredictor`` (dlib's 5-point shape predictor, ported) are imported
on first use, so that importing :mod:`facezoo.detection` or :mod:`facezoo.detection.base` imports
neither their runtimes nor torch.

Example:
    >>> from facezoo.detection import Detection, ARCFACE_TEMPLATE_112
    >>> ARCFACE_TEMPLATE_112.shape
    (5, 2)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facezoo._lazy import lazy_getattr
from facezoo.detection.align import (
    ARCFACE_TEMPLATE_112,
    align_face,
    apply_affine,
    crop_box,
    estimate_similarity,
)
from facezoo.detection.base import Detection, FaceDetector

if TYPE_CHECKING:
    from facezoo.detection.mtcnn import MTCNN
    from facezoo.detection.shape_predictor import ShapePredictor
    from facezoo.detection.yunet import YuNet

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "MTCNN",
    "Detection",
    "FaceDetector",
    "ShapePredictor",
    "YuNet",
    "align_face",
    "apply_affine",
    "crop_box",
    "estimate_similarity",
]


__getattr__ = lazy_getattr(__name__, {"MTCNN": ".mtcnn", "ShapePredictor": ".shape_predictor", "YuNet": ".yunet"})

"""Face detection and alignment.

``MTCNN`` is imported lazily (on first attribute access) so that importing
:mod:`facezoo.detection` or :mod:`facezoo.detection.base` does not import torch.

Example:
    >>> from facezoo.detection import Detection, ARCFACE_TEMPLATE_112
    >>> ARCFACE_TEMPLATE_112.shape
    (5, 2)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "MTCNN",
    "Detection",
    "FaceDetector",
    "align_face",
    "apply_affine",
    "crop_box",
    "estimate_similarity",
]


def __getattr__(name: str) -> Any:
    """Import :class:`MTCNN` (and torch) only when it is first used."""
    if name == "MTCNN":
        from facezoo.detection.mtcnn import MTCNN

        return MTCNN
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

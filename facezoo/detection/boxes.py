"""What the detectors share, in numpy: input checks and box arithmetic."""

from __future__ import annotations

import numpy as np

from facezoo.errors import InputError

__all__ = ["as_rgb", "box_iou", "nms"]


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Validate an ``HxWx3`` uint8 image; grayscale ``HxW``/``HxWx1`` and RGBA are converted."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 numpy array, got {type(image).__name__} {getattr(image, 'dtype', '')}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise InputError(f"expected an HxWx3 RGB image, got shape {image.shape}; pass a color (or gray) photo as a uint8 array")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def box_iou(a, b) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes (0 when they do not overlap or are empty).

    Example:
        >>> box_iou((0, 0, 10, 10), (5, 0, 15, 10))
        0.3333333333333333
    """
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    groups: np.ndarray | None = None,
    minimum: bool = False,
) -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, best score first.

    Overlap is intersection over union (``torchvision.ops.nms``), or with ``minimum`` intersection
    over the smaller area with MTCNN's +1 pixel convention (its final "Min" NMS). Boxes of
    different ``groups`` (images) never suppress each other.
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    boxes = boxes.astype(np.float64)
    if groups is not None:  # shift each group far apart, as torchvision's batched_nms does
        boxes = boxes + (groups.astype(np.float64) * (boxes.max() + 1))[:, None]
    x1, y1, x2, y2 = boxes.T
    plus = 1.0 if minimum else 0.0
    areas = (x2 - x1 + plus) * (y2 - y1 + plus)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + plus, 0.0)
        ih = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + plus, 0.0)
        inter = iw * ih
        overlap = inter / np.minimum(areas[i], areas[rest]) if minimum else inter / (areas[i] + areas[rest] - inter)
        order = rest[overlap <= threshold]
    return np.array(keep, dtype=np.int64)

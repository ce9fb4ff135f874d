"""Typed, JSON-serialisable results: one per face.

Each task's result is a frozen dataclass deriving from :class:`FaceResult`; when the face came
from a detector, ``face`` holds its box, score and five landmarks in the input image's pixels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np


def _plain(value: Any) -> Any:
    """numpy/tuple-free copy of ``value`` that ``json.dumps`` accepts."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class Face:
    """A detected face: box ``(x1, y1, x2, y2)``, detector score and five landmarks.

    Landmarks are (x, y) for left eye, right eye, nose tip, left and right mouth corner, as they
    appear in the image (left = smaller x in an upright face).

    Example:
        >>> Face(box=(0, 0, 10, 10), score=0.99, landmarks=((3, 4),) * 5).width
        10.0
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [float(v) for v in self.box],
            "score": float(self.score),
            "landmarks": [[float(x), float(y)] for x, y in self.landmarks],
        }


@dataclass(frozen=True, kw_only=True)
class FaceResult:
    """Base of every task result. ``face`` is ``None`` when no detector ran.

    ``model`` is the id of the model that produced the result and ``trained`` is ``False`` for a
    model with random weights, so an untrained answer can never pass for a real one.
    """

    model: str = ""
    trained: bool = True
    face: Face | None = None

    def to_dict(self) -> dict[str, Any]:
        """A dict of plain Python values, ready for ``json.dumps``."""
        out = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "face"}
        out["face"] = self.face.to_dict() if self.face else None
        return out

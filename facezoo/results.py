"""Typed, JSON-serialisable results: one per face.

Each task's result is a frozen dataclass deriving from :class:`FaceResult`; when the face came
from a detector, ``face`` holds its box, score and five landmarks in the input image's pixels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from .detection.base import Detection


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


# A face as the detector found it: box (x1, y1, x2, y2), score and five landmarks (image-left eye,
# image-right eye, nose tip, image-left and image-right mouth corner), in input-image pixels.
Face = Detection


@dataclass(frozen=True, kw_only=True)
class FaceResult:
    """Base of every task result. ``face`` is ``None`` when no detector ran.

    ``model`` is the id of the model that produced the result and ``trained`` is ``False`` for a
    model with random weights, so an untrained answer can never pass for a real one.
    """

    model: str = ""
    trained: bool = True
    face: Face | None = None

    def caption(self) -> str:
        """A short human-readable summary (CLI output, ``annotate`` labels); tasks override it.

        The default lists the result's numbers and strings.
        """
        data = self.to_dict()
        parts = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in data.items() if k not in ("model", "trained", "face") and isinstance(v, (int, float, str))]
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A dict of plain Python values, ready for ``json.dumps``."""
        out = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "face"}
        out["face"] = self.face.to_dict() if self.face else None
        return out

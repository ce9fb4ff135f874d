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


def _short(value: Any) -> str:
    """``value`` as a result's repr shows it: floats to 3 significant digits, lists and dicts of
    more than 4 items as their length (an embedding, 68 points, a 101-bin distribution)."""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3g}" if abs(value) < 100 else f"{float(value):.0f}"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_short(v) for v in value) + "]" if len(value) <= 4 else f"[{len(value)} items]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_short(v)}" for k, v in value.items()) + "}" if len(value) <= 4 else f"{{{len(value)} items}}"
    return repr(value)


#: Field metadata of a result field that holds ``[x, y]`` points in the input image's pixels
#: (``dataclasses.field(metadata={IMAGE_POINTS: True})``): :func:`in_photo` maps them with the face.
IMAGE_POINTS = "facezoo.image_points"


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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = FaceResult.__repr__  # set before @dataclass runs, so it keeps this short one

    def __repr__(self) -> str:
        """Short: the task's fields that are set (long lists as their length), the box, and whether
        untrained; :meth:`to_dict` has everything.

        Example:
            >>> from facezoo_age_gender import AgeGenderResult
            >>> AgeGenderResult(age=34.21, gender="female", gender_probability=0.9312)
            AgeGenderResult(age=34.2, gender='female', gender_probability=0.931)
        """
        return f"{type(self).__name__}({self._fields_text(box=True)})"

    def _fields_text(self, box: bool) -> str:
        shown = [f for f in dataclasses.fields(self) if f.repr and f.name not in ("model", "trained", "face") and getattr(self, f.name) is not None]
        fields = [f"{f.name}={_short(getattr(self, f.name))}" for f in shown]
        if box and self.face is not None:
            fields.append("box=(" + ", ".join(f"{v:.0f}" for v in self.face.box) + ")")
        if not self.trained:
            fields.append("untrained")
        return ", ".join(fields)

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


def _points_in_photo(points: Any, sx: float, sy: float) -> list:
    """Pixel-index points (pixel centres at integers) of an image scaled by ``1/sx``, ``1/sy`` → the photo's."""
    return [[(x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5] for x, y in points]


def face_in_photo(face: Face, sx: float, sy: float) -> Face:
    """A face found in a copy of a photo ``sx`` × ``sy`` times smaller, in the photo's own pixels."""
    x1, y1, x2, y2 = face.box
    return dataclasses.replace(face, box=(x1 * sx, y1 * sy, x2 * sx, y2 * sy), landmarks=tuple(map(tuple, _points_in_photo(face.landmarks, sx, sy))))


def in_photo(result: FaceResult, sx: float, sy: float) -> FaceResult:
    """A result computed on a copy of a photo ``sx`` × ``sy`` times smaller (``facezoo serve``
    decodes large JPEGs smaller), in the photo's own pixels: its face and every field declared
    with :data:`IMAGE_POINTS` metadata (a task's points, e.g. keypoints).

    Example:
        >>> from facezoo_beauty import BeautyResult
        >>> in_photo(BeautyResult(score=3.0, face=Face((10, 10, 20, 20), 0.9, ((12, 14),) * 5)), 2.0, 2.0).face.box
        (20.0, 20.0, 40.0, 40.0)
    """
    if sx == 1 and sy == 1:
        return result
    changes = {f.name: _points_in_photo(getattr(result, f.name), sx, sy) for f in dataclasses.fields(result) if f.metadata.get(IMAGE_POINTS) and getattr(result, f.name) is not None}
    if result.face is not None:
        changes["face"] = face_in_photo(result.face, sx, sy)
    return dataclasses.replace(result, **changes)

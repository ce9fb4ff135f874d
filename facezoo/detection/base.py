"""Detector-agnostic types: the :class:`Detection` result and the :class:`FaceDetector` interface.

This module only needs the standard library, so importing it never pulls in torch.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["LANDMARK_NAMES", "Detection", "FaceDetector"]

#: Order of the five landmarks in :attr:`Detection.landmarks` ("left"/"right" are image sides).
LANDMARK_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Detection:
    """One detected face, in original-image pixel coordinates.

    ``box`` is ``(x1, y1, x2, y2)``; ``landmarks`` holds five ``(x, y)`` points in the order of
    :data:`LANDMARK_NAMES`: image-left eye, image-right eye, nose tip, image-left mouth corner,
    image-right mouth corner (for an upright frontal face the "left" point has the smaller x).

    Example:
        >>> d = Detection(box=(10.0, 20.0, 60.0, 80.0), score=0.99,
        ...               landmarks=((25.0, 40.0), (45.0, 40.0), (35.0, 52.0), (27.0, 65.0), (43.0, 65.0)))
        >>> d.width, d.height
        (50.0, 60.0)
        >>> d.to_dict()["score"]
        0.99
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.box[3] - self.box[1]

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable form (Python floats and lists only).

        Example:
            >>> import json
            >>> json.dumps(Detection((0, 0, 1, 1), 0.5, ((0, 0),) * 5).to_dict())[:34]
            '{"box": [0.0, 0.0, 1.0, 1.0], "sco'
        """
        return {
            "box": [float(v) for v in self.box],
            "score": float(self.score),
            "landmarks": [[float(x), float(y)] for x, y in self.landmarks],
        }


class FaceDetector(abc.ABC):
    """Interface every face detector in facezoo implements.

    Subclasses set :attr:`name` and implement :meth:`detect`; they change :attr:`revision` whenever
    the same images would give other detections, so that cached dataset detections are redone.

    Example:
        >>> class NoFaces(FaceDetector):
        ...     name = "none"
        ...     def detect(self, images):
        ...         return [[] for _ in images]
        >>> NoFaces().detect([None, None])
        [[], []]
    """

    name: str
    revision: str = ""

    @abc.abstractmethod
    def detect(self, images: Sequence[Any]) -> list[list[Detection]]:
        """Detect faces in each RGB ``HxWx3`` uint8 image; one list per image, best score first."""

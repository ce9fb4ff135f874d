"""Run a registered face detector and turn its detections into :class:`~facezoo.results.Face`.

This module is also the built-in plugin (entry point ``mtcnn``) that registers facezoo's MTCNN,
the detector every built-in task names in ``preprocess.detector``.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import ImageOps

from . import _plugins
from .hookspecs import hookimpl
from .registry import DetectorSpec
from .results import Face


def _build_mtcnn():
    from .detection import MTCNN

    return MTCNN.from_pretrained()


@hookimpl
def facezoo_register_detectors(register):
    register(DetectorSpec("mtcnn", build=_build_mtcnn, summary="MTCNN with five landmarks (weights ship with facezoo)"))


@functools.lru_cache(maxsize=4)
def get_detector(name: str):
    """The detector registered as ``name``, built once per process."""
    return _plugins.registry().get("detector", name).build()


def detect_faces(name: str, images: list, min_score: float = 0.0, pad: float = 0.0) -> list[list[Face]]:
    """Faces with a detector score of at least ``min_score`` in each RGB PIL image, best first.

    ``pad`` adds a black border of that fraction of the longer side before detecting, which
    keeps detections stable on tight face crops (see docs/detection.md); coordinates are
    always those of the given image.
    """
    detector = get_detector(name)
    borders = [round(pad * max(img.size)) for img in images]
    arrays = [np.asarray(ImageOps.expand(img, border=b) if b else img) for img, b in zip(images, borders)]
    found = detector.detect(arrays)
    return [
        [
            Face(
                box=tuple(float(v) - b for v in d.box),
                score=float(d.score),
                landmarks=tuple((float(x) - b, float(y) - b) for x, y in d.landmarks),
            )
            for d in faces
            if d.score >= min_score
        ]
        for faces, b in zip(found, borders)
    ]

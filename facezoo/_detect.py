"""Run a registered face detector and turn its detections into :class:`~facezoo.results.Face`.

This module is also the built-in plugin (entry point ``mtcnn``) that registers facezoo's MTCNN,
the detector every built-in task names in ``preprocess.detector``.
"""

from __future__ import annotations

import functools

import numpy as np

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


def detect_faces(name: str, images: list) -> list[list[Face]]:
    """Faces in each RGB PIL image, best first."""
    detector = get_detector(name)
    found = detector.detect([np.asarray(img) for img in images])
    return [
        [Face(box=tuple(map(float, d.box)), score=float(d.score), landmarks=tuple(tuple(map(float, p)) for p in d.landmarks)) for d in faces]
        for faces in found
    ]

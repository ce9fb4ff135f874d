"""Run a registered face detector and turn its detections into :class:`~facezoo.results.Face`.

This module is also the built-in plugin (entry point ``detectors``) that registers facezoo's two
detectors: YuNet, the one every shipped model names in ``preprocess.detector``, and MTCNN, kept for
models framed with it and for users who want it.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import threading

import numpy as np
from PIL import ImageOps

from . import _plugins
from .hookspecs import hookimpl
from .registry import DetectorSpec
from .results import Face


def _build_yunet(runtime: str = "torch"):
    from .detection import YuNet

    return YuNet.from_pretrained(runtime=runtime)


def _build_mtcnn(runtime: str = "torch"):
    from .detection import MTCNN

    return MTCNN.from_pretrained(runtime=runtime)


@hookimpl
def facezoo_register_detectors(register):
    register(DetectorSpec("yunet", build=_build_yunet, summary="YuNet-n, landmarks refined by MTCNN's O-Net, Apache-2.0 (weights ship with facezoo)"))
    register(DetectorSpec("mtcnn", build=_build_mtcnn, summary="MTCNN with five landmarks, MIT (weights ship with facezoo)"))


_detectors: dict[tuple[str, str], object] = {}
_lock = threading.Lock()


@functools.cache
def detection_runtime() -> str:
    """Where detectors run by default: ``"onnx"`` when ONNX Runtime is installed (a core
    dependency: the same detections as on torch, to 4e-6, and YuNet about 5× faster on a CPU),
    else ``"torch"``. A model on torch (training, ``pretrained=False``) detects on it too."""
    return "onnx" if importlib.util.find_spec("onnxruntime") is not None else "torch"


def get_detector(name: str, runtime: str | None = None):
    """The detector registered as ``name``, built once per process and runtime (also when threads
    race for it). A detector whose ``build`` takes a ``runtime`` argument is built for that runtime
    (default :func:`detection_runtime`)."""
    runtime = runtime or detection_runtime()
    with _lock:
        key = (name, runtime)
        if key not in _detectors:
            build = _plugins.registry().get("detector", name, hint="See facezoo list plugins").build
            try:
                takes_runtime = "runtime" in inspect.signature(build).parameters
            except (TypeError, ValueError):
                takes_runtime = False
            _detectors[key] = build(runtime=runtime) if takes_runtime else build()
        return _detectors[key]


def detect_faces(name: str, images: list, min_score: float = 0.0, padding: float = 0.0, runtime: str | None = None) -> list[list[Face]]:
    """Faces with a detector score of at least ``min_score`` in each RGB PIL image, best first.

    An image in which no such face is found is searched once more with a black border of
    ``padding`` × its longer side: a face that fills the whole frame (a tight crop) is then found
    too. Coordinates are always those of the given image.
    """
    detector = get_detector(name, runtime)

    def run(batch: list, border: int = 0) -> list[list[Face]]:
        arrays = [np.asarray(ImageOps.expand(img, border=border) if border else img) for img in batch]
        return [
            [
                Face(
                    box=tuple(float(v) - border for v in d.box),
                    score=float(d.score),
                    landmarks=tuple((float(x) - border, float(y) - border) for x, y in d.landmarks),
                )
                for d in faces
                if d.score >= min_score
            ]
            for faces in detector.detect(arrays)
        ]

    found = run(images)
    if padding > 0:
        for i, faces in enumerate(found):
            if not faces:
                found[i] = run([images[i]], round(padding * max(images[i].size)))[0]
    return found

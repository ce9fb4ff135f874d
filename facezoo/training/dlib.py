"""dlib's face tools for the offline teachers (training time only, extra ``facezoo[teachers]``).

dlib's shape predictors and its face-recognition ResNet were trained on the boxes of dlib's own
HOG face detector. A teacher reproduces that: it runs the HOG detector on the image and takes the
box that overlaps the face facezoo's detector found; where HOG finds none (tight or tiny crops),
the facezoo box is mapped onto the HOG convention (:data:`HOG_FROM_MTCNN`, fitted on 597
SCUT-FBP5500 training faces found by both: same centre x, centre 0.087 box widths lower, 1.096×
as wide).

The model files come from the ``face-recognition-models`` wheel, found without importing it (its
``pkg_resources`` import fails on current setuptools).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from ..detection.boxes import box_iou
from ..errors import FacezooError, MissingExtraError
from ..results import Face

#: (centre x shift, centre y shift, side) of dlib's HOG box in units of the MTCNN box width.
HOG_FROM_MTCNN = (-0.006, 0.087, 1.096)


def dlib():
    """The ``dlib`` module, or an error naming the extra that installs it."""
    try:
        import dlib as module
    except ImportError:
        raise MissingExtraError("dlib-bin", "teachers", "dlib's offline teachers") from None
    return module


def package_folder(package: str, extra: str = "teachers") -> Path:
    """The installed folder of ``package`` (not imported), or an error naming the extra."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(package.replace("_", "-"), extra, f"the teacher files of {package}")
    return Path(next(iter(spec.submodule_search_locations)))


def model_file(name: str) -> Path:
    """A model file of ``face-recognition-models`` (e.g. ``shape_predictor_68_face_landmarks.dat``)."""
    path = package_folder("face_recognition_models") / "models" / name
    if not path.is_file():
        raise FacezooError(f"{path} is missing; reinstall it with pip install --force-reinstall face-recognition-models")
    return path


@functools.cache
def shape_predictor(name: str):
    """A dlib shape predictor loaded once per process."""
    return dlib().shape_predictor(str(model_file(name)))


@functools.lru_cache(maxsize=1)
def hog_detector():
    return dlib().get_frontal_face_detector()


def mapped_rectangle(face: Face):
    """A dlib rectangle in HOG's convention for a facezoo face box."""
    x1, y1, x2, y2 = face.box
    width = x2 - x1
    dx, dy, side = HOG_FROM_MTCNN
    cx, cy, half = (x1 + x2) / 2 + dx * width, (y1 + y2) / 2 + dy * width, side * width / 2
    return dlib().rectangle(round(cx - half), round(cy - half), round(cx + half) - 1, round(cy + half) - 1)


def face_rectangle(image: np.ndarray, face: Face, upsample: int = 1):
    """dlib's HOG box for ``face`` in ``image``: the detection overlapping it best, else the mapped box."""
    found = list(hog_detector()(image, upsample))
    best, best_iou = None, 0.3
    target = tuple(mapped_rectangle_box(face))
    for rect in found:
        iou = box_iou((rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1), target)
        if iou > best_iou:
            best, best_iou = rect, iou
    return best if best is not None else mapped_rectangle(face)


def mapped_rectangle_box(face: Face) -> tuple[float, float, float, float]:
    rect = mapped_rectangle(face)
    return (rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1)


def shape(image: np.ndarray, rectangle, predictor: str):
    """dlib's landmarks (a ``full_object_detection``) of the face in ``rectangle``."""
    return shape_predictor(predictor)(image, rectangle)


def points(detection) -> np.ndarray:
    """``N×2`` float array of a ``full_object_detection``'s parts."""
    return np.array([[p.x, p.y] for p in detection.parts()], dtype=np.float32)

"""The detector run once over a dataset: each image's main face, cached on disk.

Training, evaluation and teacher labelling all frame a dataset image the way ``predict`` frames a
photo: the model's detector finds the faces (see :func:`facezoo.detect_faces` for the border it
retries with), the largest face of at least ``min_face_score`` is the image's face, and the
model's crop is cut around it. Detection is the slow part, so its result is cached per dataset
split and detector settings (``$FACEZOO_CACHE/detections``); epochs and other models reuse it.
Images with no face are marked as such: they are left out of training and counted in evaluation.

Example:
    >>> faces = dataset_faces(load_dataset("utkface", "test"), model.config.preprocess)  # doctest: +SKIP
    >>> faces.found.mean()                                                               # doctest: +SKIP
    0.996
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from .._cache import cache_dir
from .._detect import detect_faces, get_detector
from .._images import load_image
from ..config import Preprocess
from ..errors import ConfigError
from ..results import Face
from . import FaceDataset

logger = logging.getLogger(__name__)

_CHUNK = 64  # images handed to the detector at once (same-sized images share its pyramid)


@dataclass(frozen=True)
class DatasetFaces:
    """The main face of each sample of a dataset (``None`` where the detector found none)."""

    faces: list[Face | None]

    @property
    def found(self) -> np.ndarray:
        """Boolean mask of the samples with a face."""
        return np.array([f is not None for f in self.faces], dtype=bool)

    def to_arrays(self) -> dict[str, np.ndarray]:
        n = len(self.faces)
        boxes, scores, marks = np.zeros((n, 4), np.float32), np.zeros(n, np.float32), np.zeros((n, 5, 2), np.float32)
        for i, face in enumerate(self.faces):
            if face is not None:
                boxes[i], scores[i], marks[i] = face.box, face.score, face.landmarks
        return {"found": self.found, "boxes": boxes, "scores": scores, "landmarks": marks}

    @classmethod
    def from_arrays(cls, data: dict[str, np.ndarray]) -> DatasetFaces:
        faces = [
            Face(box=tuple(map(float, box)), score=float(score), landmarks=tuple(tuple(map(float, p)) for p in marks))
            if found
            else None
            for found, box, score, marks in zip(data["found"], data["boxes"], data["scores"], data["landmarks"], strict=True)
        ]
        return cls(faces)


def main_face(faces: list[Face]) -> Face | None:
    """The largest face (by box area), or ``None`` for no face.

    Example:
        >>> main_face([])
    """
    return max(faces, key=lambda f: f.width * f.height) if faces else None


def detection_key(dataset: FaceDataset, preprocess: Preprocess) -> str:
    """What determines a dataset's detections: its images, the detector (and its revision) and
    the detection settings."""
    listing = "\n".join(str(s.path) for s in dataset.samples)
    revision = getattr(get_detector(preprocess.detector), "revision", "")
    settings = [preprocess.detector, preprocess.min_face_score, preprocess.detect_padding] + ([revision] if revision else [])
    payload = json.dumps([dataset.name, dataset.split, listing, *settings])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def dataset_faces(dataset: FaceDataset, preprocess: Preprocess, *, cache: bool = True, progress: bool = True) -> DatasetFaces:
    """Detect every image of ``dataset`` as ``predict`` would, once; later calls read the cache."""
    if preprocess.detector is None:
        raise ConfigError("dataset_faces() needs a preprocess that names a detector (preprocess.detector is None)")
    path = cache_dir("detections") / f"{dataset.name}-{dataset.split}-{preprocess.detector}-{detection_key(dataset, preprocess)}.npz"
    if cache and path.exists():
        with np.load(path) as data:
            return DatasetFaces.from_arrays(dict(data))
    faces: list[Face | None] = []
    samples = dataset.samples
    bar = tqdm(total=len(samples), desc=f"detect {dataset.name}/{dataset.split}", disable=not progress, leave=False)
    for start in range(0, len(samples), _CHUNK):
        chunk = samples[start : start + _CHUNK]
        images = [load_image(s.path, index=start + i) for i, s in enumerate(chunk)]
        found = detect_faces(preprocess.detector, images, min_score=preprocess.min_face_score, padding=preprocess.detect_padding)
        faces += [main_face(f) for f in found]
        bar.update(len(chunk))
    bar.close()
    result = DatasetFaces(faces)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **result.to_arrays())
        tmp.replace(path)
    logger.info("%s/%s: a face in %d of %d images", dataset.name, dataset.split, int(result.found.sum()), len(faces))
    return result

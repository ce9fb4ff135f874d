"""A dataset's faces framed as a model frames them, decoded once into uint8 arrays (cached as .npy).

Training and evaluation read faces through this module and the model's
:class:`~facezoo.FaceTransform`, exactly as ``predict`` does: detector (cached per dataset,
:mod:`facezoo.data.detections`), then the model's crop. Images in which no face is found are not
framed; ``found`` says which they are, so training leaves them out and evaluation counts them.

Example:
    >>> faces = face_arrays(load_dataset("utkface", "test"), model.transform)   # doctest: +SKIP
    >>> faces.images.shape, faces.found.mean()                                 # doctest: +SKIP
    ((4703, 112, 112, 3), 0.996)
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .._cache import cache_dir
from .._images import load_image
from .._preprocess import FaceCrop, FaceTransform
from . import FaceDataset
from .detections import dataset_faces, detection_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceArrays:
    """The framed faces of a dataset: ``images`` (``M×H×W×3`` uint8) of the ``M`` samples where a face
    was found, their ``crop_to_image`` matrices (``M×2×3``) and ``found`` (length ``N`` mask)."""

    images: np.ndarray
    crop_to_image: np.ndarray
    found: np.ndarray

    @property
    def indices(self) -> np.ndarray:
        """Sample indices of the framed faces."""
        return np.flatnonzero(self.found)

    def crop(self, row: int) -> FaceCrop:
        """The :class:`FaceCrop` of framed face ``row`` (for ``TaskSpec.encode_target``)."""
        return FaceCrop(image=Image.fromarray(self.images[row]), crop_to_image=self.crop_to_image[row])


def _key(dataset: FaceDataset, transform: FaceTransform) -> str:
    pre = transform.preprocess
    detection = detection_key(dataset, pre) if pre.detector else "\n".join(str(s.path) for s in dataset.samples)
    return hashlib.sha256(json.dumps([dataset.name, dataset.split, repr(pre), detection]).encode()).hexdigest()[:16]


def face_arrays(dataset: FaceDataset, transform: FaceTransform, *, cache: bool = True, progress: bool = True) -> FaceArrays:
    """Frame every image of ``dataset`` with ``transform`` (its detector, then its crop), once.

    Without a detector in the preprocess, each whole image is the face.
    """
    folder = cache_dir("arrays") / f"{dataset.name}-{dataset.split}-{_key(dataset, transform)}"
    if cache and (folder / "found.npy").exists():
        return FaceArrays(np.load(folder / "images.npy"), np.load(folder / "crop_to_image.npy"), np.load(folder / "found.npy"))
    pre = transform.preprocess
    faces = dataset_faces(dataset, pre, cache=cache, progress=progress).faces if pre.detector else [None] * len(dataset)
    found = np.array([f is not None for f in faces]) if pre.detector else np.ones(len(dataset), dtype=bool)
    height, width = transform.size
    images = np.empty((int(found.sum()), height, width, 3), dtype=np.uint8)
    matrices = np.empty((len(images), 2, 3), dtype=np.float64)
    rows = np.flatnonzero(found)
    for row, i in enumerate(tqdm(rows, desc=f"frame {dataset.name}/{dataset.split}", disable=not progress, leave=False)):
        crop = transform.crop(load_image(dataset.samples[i].path, index=int(i)), faces[i])
        images[row], matrices[row] = np.asarray(crop.image), crop.crop_to_image
    if cache:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "images.npy", images)
        np.save(folder / "crop_to_image.npy", matrices)
        np.save(folder / "found.npy", found)  # written last: its presence marks a complete cache
    return FaceArrays(images, matrices, found)

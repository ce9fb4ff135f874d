"""Decode a dataset once into uint8 arrays at a model's input size, cached on disk as .npy.

Training and evaluation both read faces through this module and the model's
:class:`~facezoo.FaceTransform`, so the preprocessing is the one stored in ``config.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .._images import load_image
from .._preprocess import FaceTransform
from ..registry import TaskSpec
from . import FaceDataset

logger = logging.getLogger(__name__)


# Border added around pre-cropped images before detection: without it MTCNN's boxes clip at the
# edge of tight crops and drift off-centre (docs/detection.md, "pad25").
CROP_PAD = 0.25


def _cache_dir() -> Path:
    root = os.environ.get("FACEZOO_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "facezoo")
    return Path(root) / "arrays"


def _key(dataset: FaceDataset, transform: FaceTransform, task: TaskSpec) -> str:
    listing = "\n".join(f"{s.path}\t{s.target if np.isscalar(s.target) or isinstance(s.target, tuple) else hashlib.sha1(np.asarray(s.target).tobytes()).hexdigest()}" for s in dataset.samples)
    payload = json.dumps([dataset.name, dataset.split, task.name, repr(transform.preprocess), listing])
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def encode_targets(dataset: FaceDataset, task: TaskSpec, crops: list) -> torch.Tensor:
    raw = [task.encode_target(s.target, c) if task.encode_target else s.target for s, c in zip(dataset.samples, crops)]
    array = np.asarray(raw)
    if np.issubdtype(array.dtype, np.integer):
        return torch.from_numpy(array.astype(np.int64))
    return torch.from_numpy(array.astype(np.float32))


def face_arrays(
    dataset: FaceDataset,
    transform: FaceTransform,
    task: TaskSpec,
    *,
    detector: str | None = None,
    cache: bool = True,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(faces N×H×W×3 uint8, targets, found)`` for a dataset, prepared by ``transform``.

    Without ``detector`` each image is one pre-cropped face (the bundle's datasets declare so).
    With a detector name, the largest detected face is cropped as in inference (the image gets a
    ``CROP_PAD`` border for detection only); ``found`` marks the images where one was found (the
    others fall back to the whole image).
    """
    key = _key(dataset, transform, task) + (f"-{detector}" if detector else "")
    folder = _cache_dir() / f"{dataset.name}-{dataset.split}-{key}"
    if cache and (folder / "found.npy").exists():
        return tuple(torch.from_numpy(np.load(folder / f"{n}.npy")) for n in ("images", "targets", "found"))
    height, width = transform.size
    images = np.empty((len(dataset), height, width, 3), dtype=np.uint8)
    found = np.ones(len(dataset), dtype=bool)
    crops = []
    for i, sample in enumerate(tqdm(dataset.samples, desc=f"decode {dataset.name}/{dataset.split}", disable=not progress, leave=False)):
        image = load_image(sample.path, index=i)
        face = None
        if detector:
            from .._detect import detect_faces

            faces = detect_faces(detector, [image], min_score=transform.preprocess.min_face_score, pad=CROP_PAD)[0]
            face = max(faces, key=lambda f: f.width * f.height) if faces else None
            found[i] = face is not None
        crop = transform.crop(image, face)
        images[i] = np.asarray(crop.image)
        crops.append(crop)
    targets = encode_targets(dataset, task, crops)
    if cache:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "images.npy", images)
        np.save(folder / "targets.npy", targets.numpy())
        np.save(folder / "found.npy", found)
    return torch.from_numpy(images), targets, torch.from_numpy(found)

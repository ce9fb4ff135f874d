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


def face_arrays(dataset: FaceDataset, transform: FaceTransform, task: TaskSpec, *, cache: bool = True, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images N×H×W×3 uint8, targets)`` for a pre-cropped dataset, prepared by ``transform``."""
    key = _key(dataset, transform, task)
    folder = _cache_dir() / f"{dataset.name}-{dataset.split}-{key}"
    if cache and (folder / "images.npy").exists():
        return torch.from_numpy(np.load(folder / "images.npy")), torch.from_numpy(np.load(folder / "targets.npy"))
    height, width = transform.size
    images = np.empty((len(dataset), height, width, 3), dtype=np.uint8)
    crops = []
    for i, sample in enumerate(tqdm(dataset.samples, desc=f"decode {dataset.name}/{dataset.split}", disable=not progress, leave=False)):
        crop = transform.crop(load_image(sample.path, index=i))
        images[i] = np.asarray(crop.image)
        crops.append(crop)
    targets = encode_targets(dataset, task, crops)
    if cache:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "images.npy", images)
        np.save(folder / "targets.npy", targets.numpy())
    return torch.from_numpy(images), targets

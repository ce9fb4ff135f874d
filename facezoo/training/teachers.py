"""Teacher labels: a registered teacher run once over a dataset's faces, cached and resumable.

The teacher sees the face facezoo's detector found in each image (the same detections training
uses, :func:`facezoo.data.detections.dataset_faces`) and frames it its own way. Labels are written
to ``$FACEZOO_CACHE/teachers`` in chunks, so an interrupted run resumes where it stopped; images
with no face get NaN labels.

Example:
    >>> labels = teacher_labels("dlib-resnet", load_dataset("celeba", "train"), preprocess)  # doctest: +SKIP
    >>> labels.shape                                                                      # doctest: +SKIP
    (6000, 128)
"""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
from tqdm.auto import tqdm

from .. import _plugins
from .._cache import cache_dir
from .._images import load_image
from ..config import Preprocess
from ..data import FaceDataset
from ..data.detections import dataset_faces, detection_key

logger = logging.getLogger(__name__)

CHUNK = 256  # images labelled between two saves


def teacher_labels(name: str, dataset: FaceDataset, preprocess: Preprocess, *, progress: bool = True) -> np.ndarray:
    """``N×…`` float32 labels of teacher ``name`` for every sample (NaN where no face was found)."""
    spec = _plugins.registry().get("teacher", name, hint="See facezoo list teachers")
    faces = dataset_faces(dataset, preprocess, progress=progress)
    teacher = spec.build()
    key = hashlib.sha256(json.dumps([teacher.key, detection_key(dataset, preprocess)]).encode()).hexdigest()[:16]
    folder = cache_dir("teachers") / f"{name}-{dataset.name}-{dataset.split}-{key}"
    final = folder / "labels.npy"
    if final.exists():
        return np.load(final)
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    bar = tqdm(total=len(dataset), desc=f"{name} on {dataset.name}/{dataset.split}", disable=not progress, leave=False)
    for start in range(0, len(dataset), CHUNK):
        part = folder / f"part-{start:07d}.npy"
        if part.exists():
            parts.append(np.load(part))
            bar.update(len(parts[-1]))
            continue
        indices = [i for i in range(start, min(start + CHUNK, len(dataset))) if faces.faces[i] is not None]
        images = [np.asarray(load_image(dataset.samples[i].path, index=i)) for i in indices]
        chunk = np.full((min(CHUNK, len(dataset) - start), *teacher.shape), np.nan, dtype=np.float32)
        if indices:
            chunk[np.array(indices) - start] = teacher.label(images, [faces.faces[i] for i in indices])
        tmp = part.with_suffix(".tmp.npy")
        np.save(tmp, chunk)
        tmp.replace(part)
        parts.append(chunk)
        bar.update(len(chunk))
    bar.close()
    labels = np.concatenate(parts)
    tmp = final.with_suffix(".tmp.npy")
    np.save(tmp, labels)
    tmp.replace(final)
    for part in folder.glob("part-*.npy"):
        part.unlink()
    logger.info("%s labelled %d faces of %s/%s", name, int(faces.found.sum()), dataset.name, dataset.split)
    return labels

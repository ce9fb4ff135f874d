"""``facezoo index build``: embed every face of a photo collection with ``facezoo batch``, then index.

The embedding is a batch run into ``OUTPUT.build/faces.jsonl``: resumable and exactly once (an
interrupted build continues with the same command, from the batch's finished chunks), on the
local engine or on Ray. A new index is written inside ``OUTPUT.build/`` and renamed into place
at the end; over an existing index only the photos it has not seen yet (with or without faces:
the index records them) are embedded, and they are added as one new segment. ``OUTPUT.build/`` is removed once the index holds its faces.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._batch import batch
from .._batch.inputs import list_images
from ..errors import FacezooError
from .base import FaceIndexBase
from .store import MANIFEST, FaceIndex, _load_model


def build_index(
    photos: Any,
    output: str | os.PathLike | FaceIndexBase,
    *,
    model: str | None = None,
    work: str | os.PathLike | None = None,
    engine: str = "local",
    workers: int | None = None,
    threads: int = 1,
    ray_address: str | None = None,
    progress: bool = True,
) -> FaceIndex:
    """Index every face of ``photos`` (a folder, a manifest or a list of paths, as
    :func:`facezoo.batch` takes them) with ``model``'s embeddings (default: the existing index's
    model, else the default identity model) into directory ``output``, or into an open index
    (a :class:`~facezoo.index.milvus.MilvusFaceIndex`, say) with ``work``, the folder for the
    batch run (by default ``OUTPUT.build`` beside a directory).

    Each face's metadata: ``image`` (the batch's image id: the path inside the folder, or the
    manifest's id), ``path``, ``face_index`` (0 = the detector's best face), ``box``, ``score``
    and ``time`` (when it was indexed, UTC).

    Example:
        >>> index = build_index("photos/", "photos.idx", engine="ray")   # doctest: +SKIP
        >>> index.info()["faces"]                                       # doctest: +SKIP
        1742
    """
    if isinstance(output, FaceIndexBase):
        if work is None:
            raise FacezooError(f"building into {output.location} needs work=, a folder for the batch run's files (resumable there)")
        existing = output
    else:
        output = Path(output)
        existing = FaceIndex.open(output) if (output / MANIFEST).exists() else None
        if existing is None and output.exists() and (not output.is_dir() or any(output.iterdir())):
            raise FacezooError(f"--output {output}: exists and is not a face index; choose a new directory, or the index to add to")
    if existing is None:
        model_id = _load_model(model or "identity").config.model_id
    else:
        model_id = existing.model_id if model is None else existing._check_model(_load_model(model)).config.model_id
    images = list_images(photos)
    if existing is not None:
        seen = set(existing.photos())  # with or without faces: each photo is looked at once
        images = [(image, path) for image, path in images if image not in seen]
    work = Path(work) if work is not None else output.with_name(output.name + ".build")
    if not images:
        shutil.rmtree(work, ignore_errors=True)
        return existing
    work.mkdir(parents=True, exist_ok=True)
    faces = work / "faces.jsonl"
    if not faces.exists() or (work / "faces.jsonl.parts").exists():
        manifest = work / "photos.jsonl"
        manifest.write_text("".join(json.dumps({"id": image, "path": path}) + "\n" for image, path in images))
        batch([model_id], manifest, faces, engine=engine, workers=workers, threads=threads, ray_address=ray_address, progress=progress)
    vectors, metadata = _faces(faces, model_id, dict(images))
    photos = [image for image, _ in images]
    if existing is not None:
        existing.add(vectors, metadata, photos=photos)
        index = existing
    else:
        staged = work / "index"
        shutil.rmtree(staged, ignore_errors=True)
        FaceIndex.create(staged, model_id).add(vectors, metadata, photos=photos)
        if output.exists():
            output.rmdir()  # empty: checked above
        os.rename(staged, output)
        index = FaceIndex.open(output)
    shutil.rmtree(work)
    return index


def _faces(rows_file: Path, model_id: str, paths: dict[str, str]) -> tuple[np.ndarray, list[dict]]:
    """Embeddings and metadata of the face rows of a batch output (the task column holds the embedding)."""
    task = model_id.partition("/")[0]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    vectors, metadata = [], []
    with open(rows_file, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["status"] != "face":
                continue
            vectors.append(row[task]["embedding"])
            metadata.append({"image": row["image"], "path": paths.get(row["image"]), "face_index": row["face_index"], "box": row["box"], "score": row["score"], "time": stamp})
    return np.asarray(vectors, np.float32), metadata

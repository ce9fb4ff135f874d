"""The server's gallery file: enrolled people's embeddings per model, as JSON (never pickle).

Embeddings of different models cannot be compared, so they are kept per model id::

    {"format": "facezoo-gallery", "version": 1,
     "models": {"identity/efficientnet_lite0.distilled-dlib": {"ada": [[0.01, ...], ...]}}}

The file is replaced atomically (a temporary file in the same folder, then ``os.replace``), so a
crash mid-write leaves the previous gallery intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import FacezooError

FORMAT = "facezoo-gallery"

Galleries = dict[str, dict[str, np.ndarray]]


def read_gallery(path: Path) -> Galleries:
    """``{model_id: {name: N×D float32 embeddings}}`` from ``path``; empty when it does not exist yet.

    Example:
        >>> read_gallery(Path("no-such-gallery.json"))
        {}
    """
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FacezooError(f"gallery {str(path)!r} cannot be read ({exc}); fix or move the file, or give another --gallery path") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != 1 or not isinstance(data.get("models"), dict):
        raise FacezooError(f"{str(path)!r} is not a facezoo gallery file (format {FORMAT!r}, version 1); give another --gallery path")
    galleries: Galleries = {}
    for model_id, people in data["models"].items():
        if not isinstance(people, dict):
            raise FacezooError(f"gallery {str(path)!r}: the entry of model {model_id!r} is not an object of people")
        galleries[model_id] = {}
        for name, vectors in people.items():
            try:
                array = np.asarray(vectors, dtype=np.float32)
            except (TypeError, ValueError):
                array = np.empty(0)
            if array.ndim != 2 or not array.size or not np.isfinite(array).all():
                raise FacezooError(
                    f"gallery {str(path)!r}: the embeddings of {name!r} (model {model_id!r}) are not a non-empty list of "
                    "equally long lists of finite numbers"
                )
            galleries[model_id][name] = array
    return galleries


def write_gallery(path: Path, galleries: Galleries) -> None:
    """Replace ``path`` atomically with ``galleries``.

    Example:
        >>> write_gallery(Path("gallery.json"), {"identity/x": {"ada": np.ones((1, 4))}})  # doctest: +SKIP
    """
    data = {
        "format": FORMAT,
        "version": 1,
        "models": {model_id: {name: np.asarray(v, dtype=np.float32).tolist() for name, v in people.items()} for model_id, people in galleries.items()},
    }
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise

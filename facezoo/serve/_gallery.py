"""Where the server keeps enrolled people's embeddings, per model (embeddings of different
models cannot be compared): :func:`open_gallery` picks the store from the ``--gallery`` path.

* A directory (the default for a path without ``.json``): a face index per model
  (:class:`facezoo.FaceIndex`, ``DIR/identity--dlib_resnet.v1/``), one face per embedding with
  metadata ``{"person": name}``; changing a person is one atomic commit of that index.
* A ``.json`` file, the earlier format, still read and written::

    {"format": "facezoo-gallery", "version": 1,
     "models": {"identity/efficientnet_lite0.distilled-dlib": {"ada": [[0.01, ...], ...]}}}

  replaced atomically (a temporary file in the same folder, then ``os.replace``).

Either way a crash mid-write leaves the gallery of before or of after the change.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import FacezooError
from ..index import FaceIndex

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


class GalleryFile:
    """The gallery as one JSON file (the earlier format)."""

    def __init__(self, path: Path):
        self.path = path
        self.stored = read_gallery(path)

    def read(self) -> Galleries:
        return self.stored

    def save(self, model, name: str, embeddings: np.ndarray | None) -> None:
        """Store ``name``'s embeddings for ``model`` (``None``: forget the person)."""
        people = {**self.stored.get(model.config.model_id, {})}
        if embeddings is None:
            people.pop(name, None)
        else:
            people[name] = np.asarray(embeddings, np.float32)
        write_gallery(self.path, {**self.stored, model.config.model_id: people})
        self.stored[model.config.model_id] = people


class GalleryIndexes:
    """The gallery as a directory of face indexes, one per model."""

    def __init__(self, path: Path):
        if path.exists() and not path.is_dir():
            raise FacezooError(f"gallery {str(path)!r} is a file but not a .json gallery; give a directory (a gallery of face indexes) or a .json file")
        self.path = path
        self.indexes: dict[str, FaceIndex] = {}
        if path.is_dir():
            for entry in sorted(path.iterdir()):
                if (entry / "index.json").exists():
                    index = FaceIndex.open(entry)
                    self.indexes[index.model_id] = index

    def read(self) -> Galleries:
        galleries: Galleries = {}
        for model_id, index in self.indexes.items():
            people: dict[str, list] = {}
            for _, vector, metadata in index.faces():
                people.setdefault(metadata["person"], []).append(vector)
            galleries[model_id] = {name: np.stack(vectors) for name, vectors in people.items()}
        return galleries

    def save(self, model, name: str, embeddings: np.ndarray | None) -> None:
        """Replace ``name``'s faces in ``model``'s index by ``embeddings`` (``None``: forget the person), in one commit."""
        index = self.indexes.get(model.config.model_id)
        if index is None:
            self.path.mkdir(parents=True, exist_ok=True)
            index = FaceIndex.create(self.path / model.config.model_id.replace("/", "--"), model)
            self.indexes[model.config.model_id] = index
        old = [face_id for face_id, _, metadata in index.faces() if metadata["person"] == name]
        vectors = np.zeros((0, index.width), np.float32) if embeddings is None else np.asarray(embeddings, np.float32)
        index.add(vectors, [{"person": name}] * len(vectors), replacing=old)


def open_gallery(path: Path) -> GalleryFile | GalleryIndexes:
    """The gallery store of ``--gallery path``: a ``.json`` file, else a directory of face indexes."""
    return GalleryFile(path) if path.suffix.lower() == ".json" else GalleryIndexes(path)

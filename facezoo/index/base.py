"""What every face index shares, wherever its vectors live: the model it belongs to, the checks
on what comes in, and photos in, matches out (:class:`FaceIndexBase`)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._factory import load
from ..errors import FacezooError

Where = dict | Callable[[dict], bool] | None


@dataclass(frozen=True)
class IndexMatch:
    """One indexed face close to the query: its id, cosine ``similarity`` and stored metadata."""

    id: int
    similarity: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "similarity": round(self.similarity, 6), **self.metadata}


class FaceIndexBase:
    """Face embeddings of one model, searchable: the part of :class:`~facezoo.FaceIndex` and
    :class:`~facezoo.index.milvus.MilvusFaceIndex` that does not depend on where vectors live.

    A subclass sets ``_model_info`` (``{"id", "weights_sha256", "width"}``) and implements
    ``add``, ``delete``, ``update``, ``faces``, ``__len__``, ``info`` and ``_search``.
    """

    _model_info: dict[str, Any]
    _model = None
    location = ""  # where the index is, for messages

    @property
    def model_id(self) -> str:
        """The id of the model whose embeddings the index holds."""
        return self._model_info["id"]

    @property
    def width(self) -> int:
        return int(self._model_info["width"])

    def use(self, model) -> None:
        """Search and add photos with ``model``, an already loaded copy of the index's model (checked)."""
        self._model = self._check_model(model)

    def model(self):
        """The index's model, loaded on first use and checked to be the one that made its embeddings."""
        if self._model is None:
            self._model = self._check_model(_load_model(self.model_id))
        return self._model

    def _check_model(self, model):
        recorded = self._model_info
        digest = getattr(model, "weights_sha256", None)
        if model.config.model_id != recorded["id"] or (recorded["weights_sha256"] and digest and digest != recorded["weights_sha256"]):
            raise FacezooError(
                f"{self.location} holds embeddings of {recorded['id']} (weights sha256 {str(recorded['weights_sha256'])[:12]}…); "
                f"{model.config.model_id} (weights {str(digest)[:12]}…) makes other embeddings, which cannot be compared with them. "
                f"Use the index's model, or build a new index with this one"
            )
        return model

    def photos(self) -> list[str]:
        """The photos the index holds faces of (their ``image`` metadata), sorted; :class:`~facezoo.FaceIndex`
        also records photos without faces."""
        return sorted({metadata["image"] for _, _, metadata in self.faces() if "image" in metadata})

    def search(self, queries: Any, top: int = 10, *, threshold: float | None = None, where: Where = None) -> list[list[IndexMatch]]:
        """The ``top`` most similar indexed faces for each query embedding (``width`` or ``N×width``), best first.

        ``threshold`` keeps matches of at least that cosine similarity (e.g. the model's
        verification threshold: ``facezoo.load("identity").threshold``); ``where`` keeps faces
        whose metadata has the given values (``{"image": "a.jpg"}``) or passes a function.
        """
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise FacezooError(f"top must be a positive whole number, got {top!r}")
        matches = self._search(self._as_queries(queries, "search"), top, where)
        return [[m for m in found if threshold is None or m.similarity >= threshold] for found in matches]

    def add_photos(self, photos: Sequence[Any], metadata: Sequence[dict] | None = None) -> list[int]:
        """Embed every face of each photo with the index's model and add them; metadata per face:
        ``image`` and ``path`` (the photo as given and its absolute path, for a path),
        ``face_index`` (0 = the detector's best face), ``box``, ``score`` and ``time`` (UTC),
        plus the photo's entry of ``metadata``."""
        model = self.model()
        vectors, entries = [], []
        per_photo = model.predict(list(photos))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for number, (photo, results) in enumerate(zip(photos, per_photo, strict=True)):
            for face_index, result in enumerate(results):
                vectors.append(result.embedding)
                entries.append({**_source(photo), "face_index": face_index, **_face(result), "time": stamp, **(metadata[number] if metadata else {})})
        return self.add(np.asarray(vectors, np.float32).reshape(-1, self.width), entries)

    def search_photo(self, photo: Any, top: int = 10, *, threshold: float | None = None, where: Where = None) -> list[list[IndexMatch]]:
        """:meth:`search` with the embedding of every face of ``photo``, one list per face (the detector's order)."""
        results = self.model().predict(photo)
        if not results:
            return []
        return self.search(np.asarray([r.embedding for r in results], np.float32), top, threshold=threshold, where=where)

    def _as_queries(self, vectors: Any, what: str) -> np.ndarray:
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim == 1:
            array = array[None]
        if array.ndim != 2 or array.shape[1] != self.width:
            raise FacezooError(
                f"{what}(): embeddings of {self.model_id} have {self.width} values; got an array of shape {array.shape}. "
                "Embeddings of another model cannot be searched in this index"
            )
        if not np.isfinite(array).all():
            raise FacezooError(f"{what}(): the embeddings hold NaN or infinite values")
        norms = np.linalg.norm(array, axis=1, keepdims=True)
        if (norms == 0).any():
            raise FacezooError(f"{what}(): an embedding of all zeros has no direction to compare")
        return np.ascontiguousarray(array / norms)



def _json_ready(metadata: dict) -> dict:
    try:
        return json.loads(json.dumps(metadata))
    except (TypeError, ValueError) as exc:
        raise FacezooError(f"face metadata must be JSON (strings, numbers, lists, dicts): {exc}") from None


def _source(photo: Any) -> dict:
    return {"image": os.fspath(photo), "path": str(Path(photo).absolute())} if isinstance(photo, (str, os.PathLike)) else {}


def _face(result) -> dict:
    face = result.face
    if face is None:
        return {}
    return {"box": [round(float(v), 1) for v in face.box], "score": round(float(face.score), 4)}


def _load_model(model: Any):
    loaded = load(model) if isinstance(model, (str, os.PathLike)) else model
    _embedding_width(loaded)
    return loaded


def _embedding_width(model) -> int:
    width = model.task.width(model.config.head) if hasattr(model, "embed") else None
    if not width:
        raise FacezooError(f"{model.config.model_id} makes no embeddings (a face index needs an identity model, e.g. 'identity')")
    return int(width)

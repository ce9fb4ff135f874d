"""A face index in a Milvus collection: the same API as :class:`~facezoo.FaceIndex`, for
collections that outgrow one machine (the ``milvus`` extra: pymilvus, and milvus-lite for a
local file).

``uri`` is what ``pymilvus.MilvusClient`` takes: ``http://host:19530`` for a Milvus server or
cluster (with ``token``), or a local ``faces.db`` file that milvus-lite serves in-process on
127.0.0.1. One collection holds one model's embeddings; the model (id, weights sha256, width)
and the next face id are collection properties. Faces get facezoo's ids (0, 1, 2, ...), so an
embedded index and a Milvus collection filled with the same adds agree on ids too.

Example:
    >>> index = MilvusFaceIndex.create("faces.db", model="identity")     # doctest: +SKIP
    >>> index.add_photos(["alice.jpg"])                                 # doctest: +SKIP
    [0]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import FacezooError, MissingExtraError
from .base import FaceIndexBase, IndexMatch, Where, _embedding_width, _json_ready, _load_model

PROPERTY = "facezoo.index"
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def pymilvus():
    """The ``pymilvus`` module, or an error naming the extra that installs it."""
    try:
        import pymilvus as module
    except ImportError:
        raise MissingExtraError("pymilvus", "milvus", "face indexes in Milvus") from None
    return module


class MilvusFaceIndex(FaceIndexBase):
    """Face embeddings of one model in a Milvus collection (see the module docs)."""

    def __init__(self, client, collection: str, info: dict, uri: str = ""):
        self.client, self.collection = client, collection
        self.location = f"collection {collection!r} at {uri}"
        self._info = info
        self._model_info = info["model"]

    @classmethod
    def create(cls, uri: str, model: Any = "identity", *, collection: str = "faces", index_type: str = "AUTOINDEX", token: str | None = None) -> MilvusFaceIndex:
        """A new collection for the embeddings of ``model``; ``index_type`` is Milvus's (``FLAT``:
        exact search; ``AUTOINDEX``: what the server picks, HNSW on Milvus itself)."""
        milvus = pymilvus()
        client = _client(uri, token)
        if client.has_collection(collection):
            raise FacezooError(f"{uri} already has a collection {collection!r}; open it with MilvusFaceIndex.open, or choose another collection")
        loaded = _load_model(model)
        width = _embedding_width(loaded)
        schema = milvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", milvus.DataType.INT64, is_primary=True)
        schema.add_field("vector", milvus.DataType.FLOAT_VECTOR, dim=width)
        schema.add_field("metadata", milvus.DataType.JSON)
        params = client.prepare_index_params()
        params.add_index("vector", index_type=index_type, metric_type="IP")
        info = {"model": {"id": loaded.config.model_id, "weights_sha256": loaded.weights_sha256, "width": width}, "next_id": 0}
        client.create_collection(collection, schema=schema, index_params=params, consistency_level="Strong", properties={PROPERTY: json.dumps(info)})
        index = cls(client, collection, info, uri)
        index._model = loaded
        return index

    @classmethod
    def open(cls, uri: str, *, collection: str = "faces", token: str | None = None) -> MilvusFaceIndex:
        """The face index in collection ``collection`` at ``uri``."""
        client = _client(uri, token)
        if not client.has_collection(collection):
            raise FacezooError(f"{uri} has no collection {collection!r}; create it with MilvusFaceIndex.create({uri!r}, model=...)")
        properties = client.describe_collection(collection).get("properties", {})
        if PROPERTY not in properties:
            raise FacezooError(f"collection {collection!r} at {uri} was not made by facezoo (it has no {PROPERTY} property)")
        client.load_collection(collection)
        return cls(client, collection, json.loads(properties[PROPERTY]), uri)

    def __len__(self) -> int:
        [row] = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(row["count(*)"])

    def info(self) -> dict[str, Any]:
        return {"collection": self.collection, "model": self._model_info, "faces": len(self), "next_id": self._info["next_id"]}

    def faces(self) -> Iterator[tuple[int, np.ndarray, dict]]:
        """Every face: ``(id, embedding, metadata)``, by id (read in pages: a plain query stops at Milvus's limit of 16,384 rows)."""
        pages = self.client.query_iterator(self.collection, batch_size=1000, filter="id >= 0", output_fields=["id", "vector", "metadata"])
        rows = []
        try:
            while page := pages.next():
                rows.extend(page)
        finally:
            pages.close()
        for row in sorted(rows, key=lambda r: r["id"]):
            yield int(row["id"]), np.asarray(row["vector"], np.float32), row["metadata"]

    def add(self, vectors: Any, metadata: Sequence[dict] | None = None, *, model: Any = None, photos: Iterable[str] = ()) -> list[int]:
        """As :meth:`facezoo.FaceIndex.add`; ``photos`` is not kept (a collection records faces only,
        so ``build_index`` looks at photos without faces again)."""
        if model is not None:
            self._check_model(_load_model(model))
        metadata = list(metadata) if metadata is not None else None
        if np.asarray(vectors).size == 0 and not metadata:
            return []
        vectors = self._as_queries(vectors, "add")
        metadata = metadata if metadata is not None else [{} for _ in range(len(vectors))]
        if len(metadata) != len(vectors):
            raise FacezooError(f"add(): {len(vectors)} vectors but {len(metadata)} metadata entries; give one dict per vector")
        first = self._info["next_id"]
        ids = list(range(first, first + len(vectors)))
        self._info = {**self._info, "next_id": first + len(vectors)}
        # the counter first: a crash after it leaves unused ids, never two faces with one id
        self.client.alter_collection_properties(self.collection, properties={PROPERTY: json.dumps(self._info)})
        self.client.insert(self.collection, [{"id": i, "vector": v.tolist(), "metadata": _json_ready(m)} for i, v, m in zip(ids, vectors, metadata, strict=True)])
        return ids

    def delete(self, ids: Iterable[int]) -> int:
        wanted = sorted({int(i) for i in ids})
        present = []
        for start in range(0, len(wanted), 1000):  # filter expressions of bounded length
            present += [int(r["id"]) for r in self.client.query(self.collection, filter=f"id in {wanted[start : start + 1000]}", output_fields=["id"])]
        if present:
            self.client.delete(self.collection, ids=present)
        return len(present)

    def update(self, face_id: int, vector: Any = None, metadata: dict | None = None) -> None:
        [row] = self.client.query(self.collection, filter=f"id == {int(face_id)}", output_fields=["vector", "metadata"]) or [None]
        if row is None:
            raise FacezooError(f"collection {self.collection!r} has no face with id {face_id}")
        vector = self._as_queries(row["vector"] if vector is None else vector, "update")[0]
        record = {"id": int(face_id), "vector": vector.tolist(), "metadata": _json_ready(row["metadata"] if metadata is None else metadata)}
        self.client.upsert(self.collection, [record])

    def _search(self, queries: np.ndarray, top: int, where: Where) -> list[list[IndexMatch]]:
        found = self.client.search(
            self.collection, data=queries.tolist(), limit=top, filter=_expression(where), output_fields=["metadata"], search_params={"metric_type": "IP"},
        )
        return [[IndexMatch(int(hit["id"]), float(hit["distance"]), hit["entity"]["metadata"]) for hit in sorted(hits, key=lambda h: (-h["distance"], h["id"]))] for hits in found]


def _client(uri: str, token: str | None):
    milvus = pymilvus()
    try:
        return milvus.MilvusClient(uri, token=token or "")
    except Exception as exc:  # noqa: BLE001 - pymilvus raises its own kinds for every connection failure
        raise FacezooError(f"cannot connect to Milvus at {uri!r} ({type(exc).__name__}: {str(exc)[:200]})") from None


def _expression(where: Where) -> str:
    """A Milvus filter expression for a metadata dict (values as JSON literals); functions run only in the embedded index."""
    if where is None:
        return ""
    if callable(where):
        raise FacezooError("a function as the filter runs only in the embedded FaceIndex; give Milvus a dict of metadata values")
    terms = []
    for key, value in where.items():
        if not _KEY.fullmatch(str(key)):
            raise FacezooError(f"filter key {key!r}: Milvus filters take metadata keys of letters, digits and _")
        terms.append(f'metadata["{key}"] == {json.dumps(value)}')
    return " and ".join(terms)

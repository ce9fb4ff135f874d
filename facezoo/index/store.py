"""The face index on disk: segments of vectors and metadata, a manifest that names them, FAISS.

Layout of an index directory::

    index.json          the manifest: format, the model, the segments, the deleted-ids file
    seg-000001/         one segment per add: ids.npy (int64), meta.jsonl (one JSON object per
                        row), photos.json (the photos the add records, if any) and the
                        L2-normalised float32 vectors: vectors.npy, or for large
                        segments hnsw.faiss (FAISS HNSW over them, inner product, which keeps
                        the vectors as well)
    deleted-000004.npy  ids deleted so far, with the generation that deleted each
    .lock               writers take it (one writer at a time, any number of readers)

Every change writes new files under new names and then replaces ``index.json`` atomically
(write, fsync, rename): a crash at any point leaves the manifest of before or of after the
change, and files no manifest names are removed by the next writer. A segment is never changed
once written; deletes are tombstones until :meth:`FaceIndex.compact` rewrites the live rows.

Small segments are searched exactly (a matrix product); segments of at least
:data:`HNSW_MIN_ROWS` rows get an HNSW graph (``faiss.IndexHNSWFlat``, M=:data:`HNSW_M`); deleted
rows and metadata filters are excluded inside FAISS's search (an ``IDSelector``), so top-k is
top-k of the rows that qualify.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FacezooError, MissingExtraError
from .base import FaceIndexBase, IndexMatch, Where, _embedding_width, _json_ready, _load_model

FORMAT = 1
_SEGMENT = re.compile(r"seg-\d{6,}")
_DELETED = re.compile(r"deleted-\d{6,}\.npy")
MANIFEST = "index.json"
HNSW_MIN_ROWS = 20_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 256  # recall@10 0.972 at p50 1.5 ms on 1,000,000 faces (benchmarks/index_million.py; 128: 0.921)


def faiss():
    """The ``faiss`` module, or an error naming the extra that installs it."""
    try:
        import faiss as module
    except ImportError:
        raise MissingExtraError("faiss-cpu", "index", "face indexes") from None
    return module


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())


class _Segment:
    """One immutable segment: rows ``0..n-1`` with their ids, vectors, metadata and (maybe) a graph.
    Everything is read when it opens (the vectors memory-mapped), so a segment that a compaction
    removes from the disk stays searchable by readers that hold it."""

    def __init__(self, directory: Path, generation: int):
        self.directory, self.generation = directory, generation
        self.ids = np.load(directory / "ids.npy")
        self.photos = json.loads((directory / "photos.json").read_text()) if (directory / "photos.json").exists() else []
        self._lines = (directory / "meta.jsonl").read_bytes().splitlines()
        self._parsed: list[dict] | None = None
        graph = directory / "hnsw.faiss"
        if graph.exists():
            fa = faiss()
            self.graph = fa.read_index(str(graph))
            storage = fa.downcast_index(self.graph.storage)  # the graph keeps the vectors: a view, not a copy
            self.vectors = fa.rev_swig_ptr(storage.get_xb(), self.graph.ntotal * self.graph.d).reshape(self.graph.ntotal, self.graph.d)
        else:
            self.graph = None
            self.vectors = np.load(directory / "vectors.npy", mmap_mode="r")

    def meta(self, row: int) -> dict:
        return self._parsed[row] if self._parsed is not None else json.loads(self._lines[row])

    @property
    def metadata(self) -> list[dict]:
        """Every row's metadata (parsed once, for filters)."""
        if self._parsed is None:
            self._parsed = [json.loads(line) for line in self._lines]
        return self._parsed

    @staticmethod
    def write(directory: Path, ids: np.ndarray, vectors: np.ndarray, metadata: Sequence[dict], photos: Sequence[str] = ()) -> None:
        """Write a segment into the new folder ``directory`` (fsynced; the caller renames it into place)."""
        directory.mkdir()
        _save_npy(directory / "ids.npy", ids.astype(np.int64))
        if photos:
            _fsync_write(directory / "photos.json", json.dumps(sorted(photos)).encode())
        _fsync_write(directory / "meta.jsonl", "".join(json.dumps(m, sort_keys=True) + "\n" for m in metadata).encode())
        if len(ids) >= HNSW_MIN_ROWS:  # the graph holds the vectors too: no second copy
            fa = faiss()
            graph = fa.IndexHNSWFlat(vectors.shape[1], HNSW_M, fa.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            graph.add(np.ascontiguousarray(vectors, dtype=np.float32))
            fa.write_index(graph, str(directory / "hnsw.faiss"))
            with open(directory / "hnsw.faiss", "rb") as written:
                os.fsync(written.fileno())
        else:
            _save_npy(directory / "vectors.npy", vectors.astype(np.float32))
        _fsync_dir(directory)

    def search(self, queries: np.ndarray, top: int, allowed: np.ndarray | None, ef_search: int) -> tuple[np.ndarray, np.ndarray]:
        """Similarities and rows (−1: none) of the ``top`` best rows per query among ``allowed`` (a boolean mask, or all)."""
        top = min(top, len(self.ids) if allowed is None else int(allowed.sum()))
        if self.graph is None:
            scores = queries @ np.asarray(self.vectors).T
            if allowed is not None:
                scores[:, ~allowed] = -np.inf
            rows = np.argpartition(-scores, top - 1, axis=1)[:, :top]
            best = np.take_along_axis(scores, rows, axis=1)
            order = np.argsort(-best, axis=1, kind="stable")
            return np.take_along_axis(best, order, axis=1), np.take_along_axis(rows, order, axis=1)
        fa = faiss()
        params = fa.SearchParametersHNSW(efSearch=max(ef_search, top))
        if allowed is not None:
            params.sel = fa.IDSelectorBatch(np.flatnonzero(allowed).astype(np.int64))
        return self.graph.search(np.ascontiguousarray(queries, dtype=np.float32), top, params=params)


class FaceIndex(FaceIndexBase):
    """A searchable collection of face embeddings from one model, stored in a directory.

    Example:
        >>> index = FaceIndex.create("people.idx", model="identity")        # doctest: +SKIP
        >>> index.add_photos(["alice.jpg", "bob.jpg"])                        # doctest: +SKIP
        [0, 1]
        >>> index.search_photo("someone.jpg", top=3)                          # doctest: +SKIP
        [[IndexMatch(id=0, similarity=0.93, metadata={'image': 'alice.jpg', ...})]]
    """

    def __init__(self, path: Path, manifest: dict):
        self.path = Path(path)
        self.location = str(self.path)
        self.ef_search = HNSW_EF_SEARCH  # candidates an HNSW search keeps: higher is slower and closer to exact
        self._open: dict[str, _Segment] = {}
        self._load(manifest)

    def _load(self, manifest: dict) -> None:
        """Take ``manifest`` as the state: its segments (those already open are kept) and which rows are live."""
        self._manifest = manifest
        self._model_info = manifest["model"]
        self._open = {name: self._open.get(name) or _Segment(self.path / name, generation) for name, generation in manifest["segments"]}
        self._segments = list(self._open.values())
        deleted = manifest.get("deleted")
        table = np.load(self.path / deleted) if deleted else np.zeros((0, 2), np.int64)
        self._deleted_ids, self._deleted_at = table[:, 0].copy(), table[:, 1].copy()  # sorted by id
        self._masks = [self._live_rows(segment) for segment in self._segments]

    def _live_rows(self, segment: _Segment) -> np.ndarray:
        """Rows of ``segment`` not deleted since it was written (a tombstone older than the segment is a replaced row's)."""
        if not len(self._deleted_ids):
            return np.ones(len(segment.ids), bool)
        where = np.minimum(np.searchsorted(self._deleted_ids, segment.ids), len(self._deleted_ids) - 1)
        deleted_at = np.where(self._deleted_ids[where] == segment.ids, self._deleted_at[where], -1)
        return deleted_at < segment.generation

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike, model: Any = "identity", *, exist_ok: bool = False) -> FaceIndex:
        """A new, empty index in directory ``path`` for the embeddings of ``model`` (a model id,
        task name or directory that :func:`facezoo.load` takes, or a loaded model)."""
        path = Path(path)
        if (path / MANIFEST).exists():
            if exist_ok:
                index = cls.open(path)
                index.use(_load_model(model))
                return index
            raise FacezooError(f"{path} already holds a face index; open it with FaceIndex.open({str(path)!r}), or choose another directory")
        if path.exists() and any(path.iterdir()):
            raise FacezooError(f"{path} exists and is not empty: a face index needs a directory of its own")
        loaded = _load_model(model)
        width = _embedding_width(loaded)
        path.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": FORMAT,
            "model": {"id": loaded.config.model_id, "weights_sha256": getattr(loaded, "weights_sha256", None), "width": width},
            "generation": 0, "next_id": 0, "segments": [], "deleted": None, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        index = cls(path, manifest)
        with index._writing():
            index._commit(manifest)
        index._model = loaded
        return index

    @classmethod
    def open(cls, path: str | os.PathLike) -> FaceIndex:
        """The index stored in directory ``path``.

        Readers take no lock: if a writer commits between reading the manifest and opening the
        files it names (a compaction removes the old segments), the newer manifest is read again.
        """
        path = Path(path)
        attempts = 0
        while True:
            manifest = cls._read_manifest(path)
            try:
                return cls(path, manifest)
            except FileNotFoundError:
                attempts += 1
                if attempts == 5 or manifest == cls._read_manifest(path):
                    raise FacezooError(f"{path}: a file its {MANIFEST} names is missing; the index is damaged (restore it, or build it again)") from None

    @staticmethod
    def _read_manifest(path: Path) -> dict:
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except FileNotFoundError:
            raise FacezooError(f"{path} holds no face index (no {MANIFEST}); build one with facezoo index build PHOTOS --output {path}") from None
        except (OSError, ValueError) as exc:
            raise FacezooError(f"{path / MANIFEST} is not readable ({exc}); the index cannot be opened") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise FacezooError(f"{path} is a face index of format {manifest.get('format') if isinstance(manifest, dict) else None!r}; this facezoo reads format {FORMAT}")
        names = [entry[0] if isinstance(entry, list) and len(entry) == 2 else entry for entry in manifest.get("segments", [])]
        if not all(isinstance(n, str) and _SEGMENT.fullmatch(n) for n in names) or not (manifest.get("deleted") is None or _DELETED.fullmatch(str(manifest["deleted"]))):
            raise FacezooError(f"{path / MANIFEST} names files that are not an index's (segments seg-NNNNNN, deletions deleted-NNNNNN.npy); the index is damaged or not facezoo's")
        return manifest

    # -- what it holds -------------------------------------------------------------------------

    def __len__(self) -> int:
        return sum(int(mask.sum()) for mask in self._masks)

    def photos(self) -> list[str]:
        """The photos recorded by :meth:`add` (``photos=``), with or without faces, sorted."""
        return sorted({photo for segment in self._segments for photo in segment.photos})

    def faces(self) -> Iterator[tuple[int, np.ndarray, dict]]:
        """Every face in the index: ``(id, embedding, metadata)``, in the order they were added."""
        for segment, mask in zip(self._segments, self._masks, strict=True):
            for row in np.flatnonzero(mask):
                yield int(segment.ids[row]), np.asarray(segment.vectors[row]), segment.meta(row)

    def info(self) -> dict[str, Any]:
        """What ``facezoo index info`` prints: the model, the counts and the size on disk."""
        size = sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        return {
            "path": str(self.path), "model": self._manifest["model"], "faces": len(self), "segments": len(self._segments),
            "graphs": sum(s.graph is not None for s in self._segments), "deleted_rows": int(sum((~mask).sum() for mask in self._masks)),
            "generation": self._manifest["generation"], "bytes": size,
        }

    # -- changing it ---------------------------------------------------------------------------

    def add(
        self, vectors: Any, metadata: Sequence[dict] | None = None, *, model: Any = None, replacing: Iterable[int] = (), photos: Iterable[str] = (),
    ) -> list[int]:
        """Add embeddings (``N×width``; they are L2-normalised) with one metadata dict each; returns their ids.

        ``model`` (a loaded model or its id), when given, must be the index's model. The faces
        ``replacing`` names are deleted in the same commit: a crash leaves both or neither.
        ``photos`` records the photos these faces came from, those without a face included
        (:meth:`photos`): what ``facezoo index build`` need not look at again.
        """
        if model is not None:
            self._check_model(_load_model(model) if isinstance(model, str) else model)
        metadata = list(metadata) if metadata is not None else None
        replacing = np.unique(np.asarray(list(replacing), dtype=np.int64))
        photos = sorted({str(p) for p in photos})
        if np.asarray(vectors).size == 0 and not metadata:
            if len(replacing):
                self.delete(replacing)
            if not photos:
                return []
            vectors = np.zeros((0, self.width), np.float32)  # a segment of no faces, for the photos it records
        vectors = self._as_queries(vectors, "add")
        metadata = metadata if metadata is not None else [{} for _ in range(len(vectors))]
        if len(metadata) != len(vectors):
            raise FacezooError(f"add(): {len(vectors)} vectors but {len(metadata)} metadata entries; give one dict per vector")
        with self._writing() as manifest:
            first = manifest["next_id"]
            ids = np.arange(first, first + len(vectors), dtype=np.int64)
            generation = manifest["generation"] + 1
            name = f"seg-{generation:06d}"
            self._write_segment(name, ids, vectors, [_json_ready(m) for m in metadata], photos)
            changed = {**manifest, "generation": generation, "next_id": first + len(vectors), "segments": [*manifest["segments"], [name, generation]]}
            if len(replacing):  # dead from this generation on: the new segment's rows are newer ids
                changed["deleted"] = self._write_deleted(generation, replacing, generation)
            self._commit(changed)
        return ids.tolist()

    def delete(self, ids: Iterable[int]) -> int:
        """Delete faces by id; returns how many of them were in the index."""
        wanted = np.unique(np.asarray(list(ids), dtype=np.int64))
        with self._writing() as manifest:
            found = [s.ids[m & np.isin(s.ids, wanted)] for s, m in zip(self._segments, self._masks, strict=True)]
            live = np.unique(np.concatenate(found)) if found else wanted[:0]
            if not len(live):
                return 0
            generation = manifest["generation"] + 1
            self._commit({**manifest, "generation": generation, "deleted": self._write_deleted(generation, live, generation)})
        return len(live)

    def update(self, face_id: int, vector: Any = None, metadata: dict | None = None) -> None:
        """Replace face ``face_id``'s vector and/or metadata (it keeps its id)."""
        segment, row = self._locate(face_id)
        vector = segment.vectors[row] if vector is None else vector
        metadata = segment.meta(row) if metadata is None else metadata
        vectors = self._as_queries(vector, "update")
        with self._writing() as manifest:
            generation = manifest["generation"] + 1
            name = f"seg-{generation:06d}"
            self._write_segment(name, np.array([face_id]), vectors, [_json_ready(metadata)])
            # the old row dies at the previous generation, so the new segment (this generation) lives
            deleted = self._write_deleted(generation, np.array([face_id]), generation - 1)
            self._commit({**manifest, "generation": generation, "segments": [*manifest["segments"], [name, generation]], "deleted": deleted})

    def compact(self) -> None:
        """Rewrite the live rows as one segment (with its HNSW graph from :data:`HNSW_MIN_ROWS` rows): deleted rows
        leave the disk and searches touch one graph. Slow for millions of rows (a new graph)."""
        with self._writing() as manifest:
            parts = [(s.ids[m], np.asarray(s.vectors)[m], [s.meta(r) for r in np.flatnonzero(m)]) for s, m in zip(self._segments, self._masks, strict=True) if m.any()]
            photos = self.photos()
            generation = manifest["generation"] + 1
            name = f"seg-{generation:06d}"
            if parts or photos:
                ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
                vectors = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, self.width), np.float32)
                self._write_segment(name, ids, vectors, [m for p in parts for m in p[2]], photos)
            self._commit({**manifest, "generation": generation, "segments": [[name, generation]] if parts or photos else [], "deleted": None})

    # -- searching -----------------------------------------------------------------------------

    def _search(self, queries: np.ndarray, top: int, where: Where) -> list[list[IndexMatch]]:
        found: list[list[tuple[float, int, int, int]]] = [[] for _ in range(len(queries))]
        for number, (segment, allowed) in enumerate(zip(self._segments, self._masks, strict=True)):
            if not len(segment.ids):
                continue
            if where is not None:
                allowed = allowed & _matching(segment.metadata, where)
            if allowed.all():
                allowed = None
            elif not allowed.any():
                continue
            scores, rows = segment.search(queries, top, allowed, self.ef_search)
            for q in range(len(queries)):
                found[q].extend((float(s), int(segment.ids[r]), number, int(r)) for s, r in zip(scores[q], rows[q], strict=True) if r >= 0)
        results = []
        for hits in found:
            hits.sort(key=lambda hit: (-hit[0], hit[1]))  # ties by id: the same answer however the rows are segmented
            results.append([IndexMatch(face_id, score, self._segments[number].meta(row)) for score, face_id, number, row in hits[:top]])
        return results

    # -- internals -----------------------------------------------------------------------------

    def _write_deleted(self, generation: int, ids: np.ndarray, deleted_at: int) -> str:
        """A new tombstone file: the current one plus ``ids`` deleted at generation ``deleted_at``."""
        keep = ~np.isin(self._deleted_ids, ids)
        all_ids = np.concatenate([self._deleted_ids[keep], ids])
        at = np.concatenate([self._deleted_at[keep], np.full(len(ids), deleted_at)])
        order = np.argsort(all_ids, kind="stable")
        name = f"deleted-{generation:06d}.npy"
        _save_npy(self.path / name, np.stack([all_ids[order], at[order]], axis=1).astype(np.int64))
        return name

    def _locate(self, face_id: int) -> tuple[_Segment, int]:
        for segment, mask in zip(self._segments, self._masks, strict=True):
            rows = np.flatnonzero((segment.ids == face_id) & mask)
            if len(rows):
                return segment, int(rows[0])
        raise FacezooError(f"{self.path} has no face with id {face_id}")

    def _write_segment(self, name: str, ids: np.ndarray, vectors: np.ndarray, metadata: list[dict], photos: Sequence[str] = ()) -> None:
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.path))
        _Segment.write(staging / "segment", ids, vectors, metadata, photos)
        os.rename(staging / "segment", self.path / name)
        staging.rmdir()

    def _commit(self, manifest: dict) -> None:
        """Make ``manifest`` the index's state (atomic), then drop files no manifest names."""
        tmp = self.path / f".{MANIFEST}.tmp"
        _fsync_write(tmp, (json.dumps(manifest, indent=1) + "\n").encode())
        os.replace(tmp, self.path / MANIFEST)
        _fsync_dir(self.path)
        self._load(manifest)
        self._remove_unreferenced()

    def _remove_unreferenced(self) -> None:
        kept = {name for name, _ in self._manifest["segments"]} | {self._manifest.get("deleted"), MANIFEST, ".lock"}
        for entry in self.path.iterdir():
            if entry.name not in kept:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[dict]:
        """One writer at a time: the lock, then the manifest as it is on disk now."""
        with open(self.path / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = self.path / MANIFEST
                if current.exists():
                    self._load(self._read_manifest(self.path))  # another writer may have changed it
                    self._remove_unreferenced()  # what a crashed writer left
                yield self._manifest
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _matching(metadata: list[dict], where: Where) -> np.ndarray:
    if callable(where):
        return np.array([bool(where(m)) for m in metadata], bool)
    return np.array([all(m.get(k) == v for k, v in where.items()) for m in metadata], bool)



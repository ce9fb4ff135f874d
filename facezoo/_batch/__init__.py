"""``facezoo.batch``: analyse a folder or manifest of photos into one table, resumably, on many processes.

Every image of the input becomes one row per face, or one row saying it has no face, or one
row with the error that stopped it (:mod:`facezoo._batch.rows`). The sorted input list is cut
into chunks; each finished chunk is an atomic part file (:mod:`facezoo._batch.parts`), so a run
that crashed or was interrupted continues where it stopped when called again, and the final
file is exactly that of an uninterrupted run. Units of ``batch_size`` images are computed by
local worker processes or by a Ray Data actor pool (:mod:`facezoo._batch.engines`) with one
shared per-batch function.

Example:
    >>> facezoo.batch(["age-gender", "expression"], "photos/", "faces.parquet")   # doctest: +SKIP
    BatchSummary(output=PosixPath('faces.parquet'), images=17, faces=44, no_face=0, errors=0, ...)
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .. import __version__
from ..errors import FacezooError
from .engines import import_ray, run_local, run_ray
from .inputs import fingerprint, list_images
from .parts import PartsFolder
from .rows import BatchWorker, analyze_images, columns

__all__ = ["BatchSummary", "BatchWorker", "analyze_images", "batch", "columns"]

logger = logging.getLogger(__name__)

ENGINES = ("local", "ray")
#: Images per unit of work unless told otherwise.
DEFAULT_BATCH = 16
#: Parts a run is cut into by default (fewer when there are not enough images), and the largest default part.
DEFAULT_CHUNKS, MAX_CHUNK = 20, 512


@dataclass(frozen=True)
class BatchSummary:
    """What a batch run wrote: images, rows by status, and how much was already done before."""

    output: Path
    images: int
    rows: int
    faces: int
    no_face: int
    errors: int
    chunks: int
    resumed_chunks: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "output": str(self.output)}


def _model_names(tasks: str | Sequence[str]) -> list[str]:
    names = [t.strip() for t in tasks.split(",")] if isinstance(tasks, str) else [os.fspath(t) for t in tasks]
    if not names or not all(names):
        raise FacezooError(f"tasks {tasks!r}: name at least one task, model id or model directory, e.g. 'age-gender,expression'")
    return names


def _check_models(names: list[str], load_options: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Load the models once here, so that a bad name fails now rather than in every worker; their tasks and ids."""
    from .._analyze import Analyzer
    from .._factory import load

    options = {k: v for k, v in load_options.items() if k != "device"}
    models = Analyzer(models=[load(name, **options) for name in names]).models
    columns([m.config.task for m in models])
    return [m.config.task for m in models], [m.config.model_id for m in models]


def batch(
    tasks: str | Sequence[str],
    input: str | os.PathLike | Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    engine: str = "local",
    workers: int | None = None,
    threads: int = 1,
    batch_size: int | None = None,
    chunk_size: int | None = None,
    ray_address: str | None = None,
    runtime: str | None = None,
    device: str | None = None,
    gpus_per_worker: float | None = None,
    keep_parts: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> BatchSummary:
    """Analyse every image of ``input`` with the models of ``tasks`` into ``output`` (``.parquet`` or ``.jsonl``).

    ``tasks``: task names, model ids, ``hf-hub:`` ids or model directories (a list, or one
    comma-separated string); every worker loads them itself. ``input``: a folder (its image
    files, recursively), a manifest ``.csv``/``.jsonl``/``.parquet`` with a ``path`` column
    (relative to the manifest; an optional ``id`` column names the rows), or a list of paths.

    Rows (columns in this order): ``image`` (id), ``status`` (``face``, ``no_face`` or
    ``error``), ``face_index`` (0 = the detector's best face), ``score``, ``box`` (x1, y1, x2,
    y2 pixels), ``landmarks`` (five [x, y]), one column per task with that task's result
    (``to_dict()`` without ``face``: a nested object in JSON lines, JSON text in parquet),
    ``error`` (the facezoo error of a failed image). Rows are in sorted image-id order.

    The run is resumable: ``OUT.parts/`` holds one atomic part file per ``chunk_size`` images;
    calling again with the same settings skips the finished chunks and gives the same file as an
    uninterrupted run (other settings are refused). Units of work are ``batch_size`` images.
    By default the batch size is 16 (or the largest divisor of a given ``chunk_size`` up to 16)
    and the chunk size about a twentieth of the images in whole batches, at most 512, so a
    small run resumes usefully too. An existing ``output`` is replaced only with ``overwrite``
    (or when resuming the run that writes it); whether it can be written is checked before any
    work. While it runs, ``OUT.parts/lock`` (holding its process id) keeps a second run off the
    same output. ``engine="local"`` runs ``workers`` processes
    (default: one per CPU, at most 8) of ``threads`` torch threads; ``engine="ray"`` runs a Ray
    Data actor pool of ``workers`` actors on a local Ray listening on 127.0.0.1 only, or on the
    cluster at ``ray_address`` (``"auto"`` for the one this machine belongs to), each actor with
    ``threads`` CPUs and ``gpus_per_worker`` GPUs. Runs on one engine give the same bytes; the
    engines can differ in the last digits (docs/scale.md), and so can runs with other thread
    counts, so ``threads`` is a setting of the run like ``batch_size`` (workers are not). ``runtime`` and ``device`` are passed to
    :func:`facezoo.load` when given. The parts folder is removed at the end unless ``keep_parts``.

    Example:
        >>> summary = facezoo.batch("age-gender,expression", "photos/", "faces.jsonl", workers=2)  # doctest: +SKIP
        >>> summary.faces, summary.errors                                                          # doctest: +SKIP
        (44, 0)
    """
    start = time.time()
    if engine not in ENGINES:
        raise FacezooError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    for name, value in (("batch_size", batch_size), ("chunk_size", chunk_size), ("workers", workers), ("threads", threads)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise FacezooError(f"{name} must be a whole number of at least 1, got {value!r}")
    if engine == "ray":
        import_ray(local=ray_address is None)
    names = _model_names(tasks)
    parts = PartsFolder(Path(output))
    parts.check(overwrite)
    parts.lock()
    try:
        return _run(parts, names, input, engine, workers, threads, batch_size, chunk_size, ray_address, runtime, device, gpus_per_worker, keep_parts, progress, start)
    finally:
        parts.release()


def _sizes(images: int, batch_size: int | None, chunk_size: int | None) -> tuple[int, int]:
    """The batch and chunk size of a run of ``images`` images, from those given (``None``: the default).

    The batch size defaults to 16, or to the largest divisor of a given chunk size up to 16; the
    chunk size to about a twentieth of the images (so a resume skips most of a small run too),
    rounded up to whole batches, at most 512 images.

    Example:
        >>> _sizes(45, None, None), _sizes(45, None, 8), _sizes(10_000, None, None)
        ((16, 16), (8, 8), (16, 512))
    """
    if batch_size is None:
        batch_size = DEFAULT_BATCH if chunk_size is None else max(d for d in range(1, min(DEFAULT_BATCH, chunk_size) + 1) if chunk_size % d == 0)
    if chunk_size is None:
        wanted = min(-(-images // DEFAULT_CHUNKS), MAX_CHUNK)
        chunk_size = max(1, -(-wanted // batch_size)) * batch_size
    if chunk_size % batch_size:
        raise FacezooError(f"chunk_size ({chunk_size}) must be a multiple of batch_size ({batch_size}), so that no batch spans two parts")
    return batch_size, chunk_size


def _run(
    parts: PartsFolder, names: list[str], input: Any, engine: str, workers: int | None, threads: int, batch_size: int | None,
    chunk_size: int | None, ray_address: str | None, runtime: str | None, device: str | None, gpus_per_worker: float | None,
    keep_parts: bool, progress: bool, start: float,
) -> BatchSummary:
    """The run of :func:`batch` once its arguments are checked and it holds the output's lock."""
    load_options = {k: v for k, v in (("runtime", runtime), ("device", device)) if v is not None}
    images = list_images(input)
    batch_size, chunk_size = _sizes(len(images), batch_size, chunk_size)
    task_names, model_ids = _check_models(names, load_options)
    chunks = -(-len(images) // chunk_size)
    finished = parts.open({
        "facezoo_version": __version__,
        "models": names,
        "model_ids": model_ids,
        "tasks": task_names,
        "load_options": load_options,
        "batch_size": batch_size,
        "chunk_size": chunk_size,
        "threads": threads,
        "images": len(images),
        "inputs_sha256": fingerprint(images),
    }, chunks)
    starts = {k: s for k, s in enumerate(range(0, len(images), batch_size)) if s // chunk_size not in finished}
    units = [{"unit": k, "images": json.dumps(images[s : s + batch_size])} for k, s in starts.items()]
    unit_images = {k: len(images[s : s + batch_size]) for k, s in starts.items()}
    per_chunk = chunk_size // batch_size
    waiting = Counter(k // per_chunk for k in starts)
    received: dict[int, dict[int, list]] = {}
    if units:
        if engine == "local":
            results = run_local(units, names, load_options, workers or min(8, os.cpu_count() or 1), threads)
        else:
            gpus = gpus_per_worker if gpus_per_worker is not None else (1.0 if device and device.startswith("cuda") else 0.0)
            results = run_ray(units, names, load_options, workers, threads, ray_address, gpus)
        done_images = len(images) - sum(unit_images.values())
        # closing: an error or Ctrl-C here, between units, ends the engine now (its pool, or the
        # Ray that run_ray started), not whenever the generator is collected.
        with closing(results), tqdm(total=len(images), initial=done_images, unit="img", desc="batch", disable=not progress, smoothing=0.1) as bar:
            for unit, rows in results:
                chunk = unit // per_chunk
                received.setdefault(chunk, {})[unit] = json.loads(rows)
                waiting[chunk] -= 1
                if waiting[chunk] == 0:
                    parts.write(chunk, [row for k in sorted(received[chunk]) for row in received[chunk][k]])
                    del received[chunk]
                bar.update(unit_images[unit])
    missing = [k for k in range(chunks) if not parts.part(k).exists()]
    if missing:
        raise FacezooError(f"the run ended without chunks {missing[:10]} of {parts.folder}; run the same command again to finish them")
    counts = Counter()
    for k in range(chunks):
        counts.update(parts.statuses(k))
    parts.assemble(chunks)
    if not keep_parts:
        parts.remove()
    summary = BatchSummary(
        output=parts.output,
        images=len(images),
        rows=sum(counts.values()),
        faces=counts["face"],
        no_face=counts["no_face"],
        errors=counts["error"],
        chunks=chunks,
        resumed_chunks=len(finished),
        seconds=round(time.time() - start, 2),
    )
    logger.info("%s", summary)
    return summary

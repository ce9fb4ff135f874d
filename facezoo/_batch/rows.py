"""The rows of a batch run and the one per-batch function that makes them, on any engine.

A *unit* is a fixed run of consecutive images of the sorted input list. :class:`BatchWorker`
loads the models once (in a worker process or a Ray actor) and turns each unit into rows with
:func:`analyze_images`. Units and rows travel as JSON text: the same bytes whatever the engine
(no Ray or Arrow batch-format conversions on the way) and floats round-trip exactly, so a row
does not depend on where it was computed.

Every image gives at least one row (see :data:`FIXED_COLUMNS`):

* ``status="face"``: one row per detected face, best first, ``face_index`` 0, 1, ...
* ``status="no_face"``: one row, the face columns empty;
* ``status="error"``: one row whose ``error`` is the facezoo error naming the image and the fix.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

from .._images import load_image
from ..errors import FacezooError

logger = logging.getLogger(__name__)

#: Columns of every row, before one column per task (that task's result) and ``error`` last.
FIXED_COLUMNS = ("image", "status", "face_index", "score", "box", "landmarks")
STATUSES = ("face", "no_face", "error")


def columns(tasks: Sequence[str]) -> tuple[str, ...]:
    """The column order of a run over ``tasks``.

    Example:
        >>> columns(["age-gender"])
        ('image', 'status', 'face_index', 'score', 'box', 'landmarks', 'age-gender', 'error')
    """
    clash = sorted(set(tasks) & {*FIXED_COLUMNS, "error"})
    if clash:
        raise FacezooError(f"task names {clash} clash with the batch columns {[*FIXED_COLUMNS, 'error']}; rename the task in its plugin")
    if len(set(tasks)) != len(tasks):
        raise FacezooError(f"two models of the same task in {list(tasks)}: a batch run has one column per task, so give one model per task")
    return (*FIXED_COLUMNS, *tasks, "error")


def _row(image: str, tasks: Sequence[str], status: str, **values: Any) -> dict[str, Any]:
    row = dict.fromkeys(columns(tasks))
    row.update(image=image, status=status, **values)
    return row


def _failure(image: str, tasks: Sequence[str], exc: Exception) -> dict[str, Any]:
    if isinstance(exc, FacezooError):
        return _row(image, tasks, "error", error=str(exc))
    logger.warning("%s failed with an unexpected %s", image, type(exc).__name__, exc_info=exc)
    return _row(image, tasks, "error", error=f"{type(exc).__name__}: {exc}")


def _face_rows(image: str, tasks: Sequence[str], analyses: list) -> list[dict[str, Any]]:
    if not analyses:
        return [_row(image, tasks, "no_face")]
    rows = []
    for index, analysis in enumerate(analyses):
        record = analysis.to_dict()
        face = record.pop("face")
        rows.append(_row(image, tasks, "face", face_index=index, score=face["score"], box=face["box"], landmarks=face["landmarks"], **record))
    return rows


def analyze_images(analyzer, images: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Rows for ``images`` (``(image id, path)`` pairs, in order) with a held :class:`~facezoo._analyze.Analyzer`.

    Images that load are analysed together (detection once, then every model); an image that
    cannot be read becomes an error row. If analysing them together fails, each is analysed
    alone, so one bad image costs only its own row.

    Example:
        >>> analyze_images(Analyzer(models=[model]), [("a.jpg", "/photos/a.jpg")])   # doctest: +SKIP
        [{'image': 'a.jpg', 'status': 'face', 'face_index': 0, 'score': 0.99, ...}]
    """
    tasks = [model.config.task for model in analyzer.models]
    rows: list[list[dict[str, Any]] | None] = [None] * len(images)
    loaded: list[tuple[int, Any]] = []
    for position, (image, path) in enumerate(images):
        try:
            loaded.append((position, load_image(path)))
        except Exception as exc:  # noqa: BLE001 - any unreadable file is that image's row, never the run's end
            rows[position] = [_failure(image, tasks, exc)]
    if loaded:
        try:
            found = analyzer([picture for _, picture in loaded])
        except Exception:  # noqa: BLE001 - find the image at fault: each alone
            found = None
        for k, (position, picture) in enumerate(loaded):
            image = images[position][0]
            try:
                rows[position] = _face_rows(image, tasks, found[k] if found is not None else analyzer([picture])[0])
            except Exception as exc:  # noqa: BLE001
                rows[position] = [_failure(image, tasks, exc)]
    return [row for image_rows in rows for row in image_rows]


class BatchWorker:
    """Holds the models of a run and maps units of images to rows: the Ray Data callable class,
    and what each local worker process keeps.

    ``models`` are task names, model ids, ``hf-hub:`` ids or model directories, loaded here
    (each worker loads its own); ``load_options`` go to :func:`facezoo.load` (``runtime``,
    ``device``); ``threads`` sets the CPU threads of torch and of ONNX Runtime. A batch is
    ``{"unit": [...], "images": [...]}`` where each ``images`` entry is the JSON list of ``[image id, path]`` of a unit; the
    result is ``{"unit": [...], "rows": [...]}`` with each unit's rows as JSON text.

    Example:
        >>> worker = BatchWorker(["age-gender"])                                        # doctest: +SKIP
        >>> worker({"unit": [0], "images": ['[["a.jpg", "/photos/a.jpg"]]']})["rows"]   # doctest: +SKIP
        ['[{"image": "a.jpg", "status": "face", ...}]']
    """

    def __init__(self, models: Sequence[str], load_options: dict[str, Any] | None = None, threads: int | None = None):
        from .._analyze import Analyzer
        from .._factory import load

        if threads:  # the same threads on every engine: the thread count changes the last digits of some numbers
            os.environ["FACEZOO_THREADS"] = str(threads)  # ONNX Runtime sessions made from here on
        # One analyzer per worker process, and the processes fill the cores: networks one at a time.
        self.analyzer = Analyzer(models=[load(name, **(load_options or {})) for name in models], side_by_side=False)
        if threads and any(model.runtime == "torch" for model in self.analyzer.models):
            import torch

            torch.set_num_threads(threads)
        columns([m.config.task for m in self.analyzer.models])

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        units = [int(u) for u in batch["unit"]]
        rows = [json.dumps(analyze_images(self.analyzer, json.loads(str(text))), allow_nan=False) for text in batch["images"]]
        return {"unit": units, "rows": rows}

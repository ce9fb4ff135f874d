"""``facezoo.analyze``: detect faces once, then let several task models fill in each face.

Example:
    >>> faces = facezoo.analyze("group.jpg", tasks=["age-gender", "expression"])   # doctest: +SKIP
    >>> faces[0].results["age-gender"].age                                         # doctest: +SKIP
    34.2
    >>> facezoo.annotate("group.jpg", faces).save("out.jpg")                       # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from ._factory import _pretrained_for, available_offline, list_tasks, load
from ._images import as_batch, load_image, load_images
from .errors import FacezooError, InputError
from .results import Face, FaceResult

logger = logging.getLogger(__name__)

#: Task networks an :class:`Analyzer` runs at once on ONNX Runtime, which releases the GIL while
#: it runs: one small network on a photo's few faces keeps two cores only half busy
#: (benchmarks/analyze_speed.py). Shared by every analyzer of the process.
NETWORKS_AT_ONCE = 2
_networks_pool: ThreadPoolExecutor | None = None
_networks_pool_lock = threading.Lock()


def _side_by_side() -> ThreadPoolExecutor:
    global _networks_pool
    with _networks_pool_lock:
        if _networks_pool is None:
            _networks_pool = ThreadPoolExecutor(NETWORKS_AT_ONCE, thread_name_prefix="facezoo-networks")
        return _networks_pool


def _forget_pool_after_fork() -> None:
    # A forked child (gunicorn --preload, multiprocessing's fork) has none of the parent's threads:
    # it starts a pool of its own rather than wait on threads that do not exist there.
    global _networks_pool, _networks_pool_lock
    _networks_pool, _networks_pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


@dataclass(frozen=True)
class FaceAnalysis:
    """One detected face and every task's result for it, keyed by task name."""

    face: Face
    results: dict[str, FaceResult] = field(default_factory=dict)

    def __repr__(self) -> str:
        """Short: the box and score, then each task's result fields (see ``FaceResult.__repr__``)."""
        box = ", ".join(f"{v:.0f}" for v in self.face.box)
        results = ", ".join(f"{task!r}: {type(r).__name__}({r._fields_text(box=False)})" for task, r in self.results.items())
        return f"FaceAnalysis(box=({box}), score={self.face.score:.3g}, results={{{results}}})"

    def to_dict(self) -> dict[str, Any]:
        out = {"face": self.face.to_dict()}
        for task, result in self.results.items():
            data = result.to_dict()
            data.pop("face", None)
            out[task] = data
        return out

    def caption(self) -> str:
        """Every task's short caption, e.g. ``"34y female, happy"``."""
        return ", ".join(r.caption() + ("" if r.trained else " (untrained)") for r in self.results.values())


def runnable_tasks() -> tuple[list[str], dict[str, str]]:
    """Tasks whose default model loads offline now, and the others with the reason."""
    ready, skipped = [], {}
    for task in list_tasks():
        try:
            spec = _pretrained_for(task, None)
        except FacezooError as exc:
            skipped[task] = str(exc).split(".")[0]
            continue
        if available_offline(spec):
            ready.append(task)
        else:
            skipped[task] = f"its weights ({spec.source}) are not downloaded"
    return ready, skipped


def _detection(model) -> tuple:
    pre = model.config.preprocess
    return (pre.detector, pre.min_face_score, pre.detect_padding)


def _sharing_one_detector(models: list, skipped: dict[str, str]) -> list:
    """The models that detect faces the way most of them do (one detector runs for all); the
    others are added to ``skipped`` with the reason."""
    groups: dict[tuple, list] = {}
    for model in models:
        groups.setdefault(_detection(model), []).append(model)
    usable = [key for key in groups if key[0] is not None]
    if not usable:
        return models
    chosen = max(usable, key=lambda key: (len(groups[key]), str(key)))
    for model in models:
        if _detection(model) != chosen:
            skipped[model.config.task] = f"it detects faces with {_detection(model)[0]!r}, the others with {chosen[0]!r}"
    return groups[chosen]


class Analyzer:
    """Holds one model per task and analyses photos: detect once, every model fills each face.

    Without ``tasks`` it takes every task that can join in (see :func:`analyze`); ``skipped``
    names the others with the reason (also logged at INFO: ``facezoo -v``). A task named in
    ``tasks`` that cannot load is an error. Models on ONNX Runtime run :data:`NETWORKS_AT_ONCE`
    at a time unless ``side_by_side=False`` (for callers that already run one analyzer per core,
    as ``facezoo batch`` does); the answers are the same either way.

    Example:
        >>> analyzer = Analyzer(["age-gender", "expression"])        # doctest: +SKIP
        >>> analyzer(["a.jpg", "b.jpg"])                              # doctest: +SKIP
        [[FaceAnalysis(...)], [FaceAnalysis(...), FaceAnalysis(...)]]
        >>> Analyzer().skipped                                        # doctest: +SKIP
        {'glasses': 'its weights (hf-hub:facezoo-examples/glasses-mobilenetv3@v1) are not downloaded'}
    """

    def __init__(self, tasks: Sequence[str] | None = None, *, models: list | None = None, side_by_side: bool = True, **load_options: Any):
        self.skipped: dict[str, str] = {}
        if models is None:
            every_task = tasks is None
            if every_task:
                tasks, self.skipped = runnable_tasks()
            if isinstance(tasks, str):
                tasks = [tasks]
            models = [load(task, **load_options) for task in tasks]
            if every_task:
                # Tasks the caller did not name: a plugin's model not downloaded, or one detecting
                # faces its own way, is no fault of this call (an installed example plugin must not
                # make every analyze() warn), so it is logged, not warned about.
                models = _sharing_one_detector(models, self.skipped)
                if self.skipped:
                    logger.info("analyze() skips %s; name tasks=[...] to choose", "; ".join(f"{t} ({why})" for t, why in sorted(self.skipped.items())))
        if not models:
            raise FacezooError("analyze() needs at least one task or model")
        detectors = {_detection(m) for m in models}
        if len(detectors) != 1 or None in {d[0] for d in detectors}:
            raise FacezooError(
                f"analyze() runs one detector for all models, but these models detect with {sorted(map(str, detectors))}; "
                "call each model's predict() instead"
            )
        self.models = models
        self.side_by_side = side_by_side and len(models) > 1 and all(m.runtime == "onnx" for m in models)

    def __call__(self, images: Any) -> list:
        """One list of :class:`FaceAnalysis` per image (a single image gives one list)."""
        items, single = as_batch(images)
        pictures = load_images(items)
        faces = self.models[0].detect(pictures)
        records = [[FaceAnalysis(face=f) for f in found] for found in faces]
        cut = self.cut(pictures, faces)

        def fill(model) -> list[list[FaceResult]]:
            return model.predict_crops(cut[model.transform.framing], len(pictures))

        answers = _side_by_side().map(fill, self.models) if self.side_by_side else map(fill, self.models)
        for model, per_image in zip(self.models, answers, strict=True):
            for image_records, results in zip(records, per_image, strict=True):
                for record, result in zip(image_records, results, strict=True):
                    record.results[model.config.task] = result
        return records[0] if single else records

    def cut(self, pictures: list[Image.Image], faces: list[list[Face]]) -> dict[tuple, list]:
        """The faces' crops for every model, once per framing (``FaceTransform.framing``): models
        framing faces alike share them, and a gray model takes the colour crops of its geometry, made gray.
        Side by side, each geometry is cut on a thread of its own (Pillow releases the GIL)."""
        geometries: dict[tuple, tuple] = {}  # colour framing -> (its transform, the gray framings made from it)
        for model in self.models:
            transform = model.transform
            color = transform.in_color() if transform.preprocess.grayscale else transform
            _, grays = geometries.setdefault(color.framing, (color, {}))
            if transform is not color:
                grays[transform.framing] = transform

        def cut_geometry(color, grays) -> dict[tuple, list]:
            crops = color.crops(pictures, faces)
            return {color.framing: crops} | {framing: [gray.grayed(crop) for crop in crops] for framing, gray in grays.items()}

        jobs = list(geometries.values())
        cuts = _side_by_side().map(lambda job: cut_geometry(*job), jobs) if self.side_by_side and len(jobs) > 1 else (cut_geometry(*job) for job in jobs)
        return {framing: crops for cut in cuts for framing, crops in cut.items()}


_analyzers: dict[tuple, Analyzer] = {}
_lock = threading.Lock()


def analyze(images: Any, tasks: Sequence[str] | None = None, *, models: list | None = None) -> list:
    """Detect the faces of an image (or a list of images) once and run each task's model on them.

    ``tasks`` default to every task whose pretrained model loads offline and detects faces as most
    of them do (the others are logged at INFO and listed in ``Analyzer().skipped``; a task named
    in ``tasks`` that cannot run is an error). Models load once per process and are reused by
    later calls; pass ``models`` to use models you hold. Faces are in the detector's order (best first).

    Example:
        >>> faces = facezoo.analyze("group.jpg", tasks=["age-gender", "expression"])   # doctest: +SKIP
        >>> faces[0].caption()                                                         # doctest: +SKIP
        '34y female, happy'
    """
    if models is not None:
        return Analyzer(models=models)(images)
    key = tuple(tasks) if tasks is not None else None
    with _lock:
        if key not in _analyzers:
            _analyzers[key] = Analyzer(tasks)
        analyzer = _analyzers[key]
    return analyzer(images)


def annotate(image: Any, faces: list[FaceAnalysis] | list[FaceResult]) -> Image.Image:
    """A copy of ``image`` with each face's box, landmarks, keypoints and labels drawn on it.

    ``faces`` are the results for this one image: ``analyze(image)`` or ``model.predict(image)``.
    """
    if not isinstance(faces, (list, tuple)) or not all(isinstance(f, (FaceAnalysis, FaceResult)) for f in faces):
        nested = isinstance(faces, (list, tuple)) and any(isinstance(f, list) for f in faces)
        raise InputError(
            "annotate() draws the faces of one image: pass analyze(image) or model.predict(image) for that image"
            + (", not the list of lists predict() returns for several images (use results[i])" if nested else f", not {type(faces).__name__}")
        )
    picture = load_image(image).copy()
    draw = ImageDraw.Draw(picture)
    width = max(2, round(max(picture.size) / 400))
    font = ImageFont.load_default(size=max(12, round(max(picture.size) / 60)))
    for item in faces:
        if isinstance(item, FaceAnalysis):
            results, face, caption = item.results.values(), item.face, item.caption()
        else:
            results, face, caption = [item], item.face, item.caption() + ("" if item.trained else " (untrained)")
        for result in results:
            for x, y in getattr(result, "points", None) or []:
                draw.ellipse([x - width, y - width, x + width, y + width], fill=(0, 220, 255))
        if face is None:
            continue
        x1, y1, x2, y2 = face.box
        draw.rectangle([x1, y1, x2, y2], outline=(0, 255, 0), width=width)
        for x, y in face.landmarks:
            draw.ellipse([x - width, y - width, x + width, y + width], fill=(255, 60, 60))
        if caption:
            left, top, right, bottom = draw.textbbox((0, 0), caption, font=font)
            y = max(0, y1 - (bottom - top) - 4)
            draw.rectangle([x1, y, x1 + right - left + 4, y + bottom - top + 4], fill=(0, 0, 0))
            draw.text((x1 + 2, y + 2 - top), caption, fill=(255, 255, 255), font=font)
    return picture

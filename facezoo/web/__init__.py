"""Faces analysed in the browser itself: the files ``facezoo.js`` needs, for ``facezoo serve``'s
page and for ``facezoo export-web``'s static folder.

The browser runs the same ONNX files as Python (onnxruntime-web, WASM): the YuNet detector with
MTCNN's O-Net landmarks and each task's ``model.onnx``; a model aligned on dlib's 5 points
(identity) also gets dlib's shape predictor's trees, which facezoo.js runs itself. What it needs to frame and decode faces
as ``predict`` does is in a manifest (:func:`manifest`). Both layouts are the same folder::

    web/facezoo.js  web/manifest.json  web/models/<task>.onnx  web/detector/*  web/vendor/ort*

onnxruntime-web comes from npm at build time (``bash web/build.sh`` copies its three WASM-backend files into
``facezoo/web/static/vendor``); facezoo never fetches anything at run time.

Example:
    >>> from facezoo.web import export_web
    >>> export_web("site", tasks=["age-gender", "expression"])   # doctest: +SKIP
    PosixPath('site')
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._analyze import runnable_tasks
from .._detect import get_detector
from .._factory import load
from ..detection.mtcnn import ONNX_PATHS
from ..detection.shape_predictor import WEIGHTS_PATH as SHAPE_PREDICTOR
from ..detection.yunet import ONNX_PATH
from ..errors import FacezooError

__all__ = ["BROWSER_TASKS", "RUNTIME_FILES", "STATIC", "VENDOR", "export_web", "manifest", "runtime_missing", "web_files"]

STATIC = Path(__file__).resolve().parent / "static"
VENDOR = STATIC / "vendor"
#: onnxruntime-web's WASM build: its ES module, the loader its worker threads import, the SIMD+threads binary (web/package.json pins the version).
RUNTIME_FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm", "LICENSE")
#: Tasks facezoo.js decodes as their plugins' ``postprocess`` does (its DECODERS).
BROWSER_TASKS = ("beauty", "age-gender", "expression", "keypoints", "identity")
#: Framings facezoo.js cuts: five-point alignment (every shipped model).
BROWSER_CROPS = ("align",)
PAGE_FILES = ("index.html", "app.js", "style.css")


def runtime_missing() -> str | None:
    """Why the in-browser mode cannot run from this install (its onnxruntime-web files are absent), or ``None``."""
    missing = [name for name in RUNTIME_FILES if not (VENDOR / name).is_file()]
    if not missing:
        return None
    return (
        f"onnxruntime-web's files are not in this facezoo install ({', '.join(missing)} missing from {VENDOR}): "
        "in a facezoo checkout run `bash web/build.sh` (npm, at build time), then reinstall"
    )


def _onnx_path(model) -> Path | None:
    path = getattr(model.network, "path", None)
    return Path(path) if path is not None and str(path).endswith(".onnx") else None


def _unsupported(model) -> str | None:
    pre = model.config.preprocess
    if model.config.task not in BROWSER_TASKS:
        return f"facezoo.js has no decoder for task {model.config.task!r} (it decodes {', '.join(BROWSER_TASKS)})"
    if pre.detector != "yunet":
        return f"it finds faces with {pre.detector!r}; the browser runs YuNet only"
    if pre.crop not in BROWSER_CROPS:
        return f"its crop {pre.crop!r} is not one facezoo.js cuts ({', '.join(BROWSER_CROPS)})"
    if _onnx_path(model) is None:
        return "it runs on torch, not ONNX Runtime: load it with runtime='onnx' (facezoo export --format onnx writes its model.onnx)"
    return None


def _detector_settings() -> dict[str, float]:
    yunet = get_detector("yunet", "onnx")
    return {
        "max_side": yunet.max_side,
        "min_side": yunet.min_side,
        "score_threshold": yunet.score_threshold,
        "nms_threshold": yunet.nms_threshold,
        "refine_score": yunet.refine_score,
    }


def web_files(models: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Path]]:
    """The manifest of ``models`` and every file of the web folder but it: ``{path in the folder:
    source file}`` (facezoo.js, onnxruntime-web, the detector, the models).

    Models the browser cannot run are listed under ``unsupported`` with the reason.
    """
    files: dict[str, Path] = {
        "facezoo.js": STATIC / "facezoo.js",
        **{f"vendor/{name}": VENDOR / name for name in RUNTIME_FILES},
        "detector/yunet_n.onnx": ONNX_PATH,
        "detector/mtcnn-onet.onnx": ONNX_PATHS["onet"],
    }
    entries, unsupported = [], {}
    for model in models:
        task = model.config.task
        reason = _unsupported(model)
        if reason:
            unsupported[task] = reason
            continue
        source = _onnx_path(model)
        name = f"models/{task}{'.int8' if source.name.endswith('.int8.onnx') else ''}.onnx"
        files[name] = source
        entries.append({
            "task": task,
            "id": model.config.model_id,
            "trained": model.config.trained,
            "model": name,
            "bytes": source.stat().st_size,
            "preprocess": json.loads(json.dumps(dataclasses.asdict(model.config.preprocess))),
            "labels": list(model.config.labels),
            "head": json.loads(json.dumps(model.config.head)),
        })
    detector = {"name": "yunet", "model": "detector/yunet_n.onnx", "landmarks": "detector/mtcnn-onet.onnx", "settings": _detector_settings()}
    if any(entry["preprocess"]["landmarks"] == "dlib-5" for entry in entries):  # read by facezoo.js's ShapePredictor
        detector["shape_predictor"] = f"detector/{SHAPE_PREDICTOR.name}"
        files[detector["shape_predictor"]] = SHAPE_PREDICTOR
    manifest = {
        "format": 1,
        "detector": detector,
        "runtime": {"module": "vendor/ort.wasm.bundle.min.mjs", "wasm_dir": "vendor/"},
        "models": entries,
        "unsupported": unsupported,
    }
    return manifest, files


def manifest(models: Sequence[Any]) -> dict[str, Any]:
    """What ``facezoo.js`` reads (``manifest.json``): the detector, and per model its task, ONNX
    file and framing.

    Example:
        >>> import facezoo
        >>> manifest([facezoo.load("age-gender")])["models"][0]["preprocess"]["crop"]
        'align'
    """
    return web_files(models)[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_web(directory: str | Path, tasks: Sequence[str] | None = None, *, quantize: str | None = None, overwrite: bool = False) -> Path:
    """Write a static site that analyses faces in the browser, with no facezoo server: the page,
    ``facezoo.js``, onnxruntime-web and the models of ``tasks`` (default: every task whose
    shipped model the browser can run). ``quantize="int8"`` takes each task's int8 model where
    one ships (the others stay float; the manifest says which).

    Serve it from any static host, e.g. ``python -m http.server -d DIR``.

    Example:
        >>> export_web("site", ["age-gender"])   # doctest: +SKIP
        PosixPath('site')
    """
    missing = runtime_missing()
    if missing:
        raise FacezooError(missing)
    if quantize not in (None, "int8"):
        raise FacezooError(f"quantize must be 'int8' or None, got {quantize!r}")
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise FacezooError(f"{target} is a file: export-web writes a folder; choose a new folder name")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise FacezooError(f"{target} exists and is not empty: choose a new folder, or pass --overwrite to replace its files")
    chosen = list(tasks) if tasks else [t for t in runnable_tasks()[0] if t in BROWSER_TASKS]
    models, notes = [], {}
    for task in chosen:
        try:
            models.append(load(task, runtime="onnx", quantize=quantize))
        except FacezooError as exc:
            if quantize is None:
                raise
            models.append(load(task, runtime="onnx"))
            notes[task] = f"no int8 model ships, so the float one is exported ({exc})"
    manifest_data, files = web_files(models)
    if manifest_data["unsupported"] and tasks:
        raise FacezooError("cannot run in the browser: " + "; ".join(f"{t}: {why}" for t, why in manifest_data["unsupported"].items()))
    if notes:
        manifest_data["notes"] = notes
    try:
        _write_site(target, files, manifest_data)
    except OSError as exc:
        raise FacezooError(f"cannot write the site to {target} ({exc.strerror or exc}): choose a folder you can write") from None
    return target


def _write_site(target: Path, files: dict[str, Path], manifest_data: dict[str, Any]) -> None:
    page = STATIC.parent.parent / "serve" / "static"
    web = target / "web"
    if (web / "manifest.json").is_file() and (web / "models").is_dir():  # an earlier export (--overwrite): its models go
        shutil.rmtree(web / "models")
    (target / "static").mkdir(parents=True, exist_ok=True)
    html = (page / "index.html").read_text(encoding="utf-8").replace('<meta name="facezoo-mode" content="server">', '<meta name="facezoo-mode" content="browser">')
    (target / "index.html").write_text(html, encoding="utf-8")
    for name in PAGE_FILES[1:]:
        shutil.copyfile(page / name, target / "static" / name)
    for name, source in files.items():
        (web / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, web / name)
    manifest_data["files"] = {name: {"bytes": (web / name).stat().st_size, "sha256": _sha256(web / name)} for name in sorted(files)}
    (web / "manifest.json").write_text(json.dumps(manifest_data, indent=1) + "\n", encoding="utf-8")

"""The ``facezoo`` command line: mirrors the Python API; plugins add commands of their own.

    facezoo list [tasks|models|plugins|datasets|teachers|detectors|backbones|commands] [--pretrained] [--json]
    facezoo predict TASK IMAGE... [--backbone B] [--untrained] [--no-detect] [--annotate OUT] [--json]
    facezoo info MODEL [--json]
    facezoo push DIR REPO_ID [--branch B] [--tag T]
    facezoo train TASK --dataset D --output DIR [--teacher T] [--extra-data D:S ...] [--nproc N] ...
    facezoo export RUN_DIR TARGET_DIR [--no-half] [--check D:S[@TEACHER] ...]
    facezoo eval MODEL --dataset D [--split S] [--limit N] [--no-detect] [--json]
    facezoo serve [--tasks T,...] [--untrained] [--host H] [--port P] [--token T] [--gallery FILE] ...

    facezoo batch TASKS --input DIR|MANIFEST --output OUT.(parquet|jsonl) [--engine local|ray] [--workers N] ...
    facezoo index build PHOTOS --output IDX [--model M] [--engine local|ray] | search IDX PHOTO [--top K] | info IDX
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import facezoo

from . import _plugins
from ._version import __version__
from .errors import FacezooError
from .registry import parse_model_id


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, allow_nan=False))


def _name(path: str) -> str:
    """A file name as the user typed it, printable on any terminal."""
    return os.fsdecode(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _cmd_list(args: argparse.Namespace) -> int:
    registry = _plugins.registry()
    if args.what == "plugins":
        infos = facezoo.list_plugins()
        if args.json:
            _print_json([p.to_dict() for p in infos])
        for p in [] if args.json else infos:
            print(f"{p.name:<12} {p.distribution} {p.version}  hooks: {', '.join(p.hooks)}")
        return 0
    if args.what == "models":
        ids = facezoo.list_models(args.filter or "", pretrained=args.pretrained)
        rows = [{"model": i, "default": registry.get("model", i).default, "source": registry.get("model", i).source} for i in ids]
        if args.json:
            _print_json(rows)
        elif not rows:
            print("no pretrained models are registered" + (f" matching {args.filter!r}" if args.filter else ""))
        for r in [] if args.json else rows:
            print(f"{r['model']}{'  (default)' if r['default'] else ''}")
        return 0
    kind = args.what.rstrip("s")
    rows = [
        {kind: name, "summary": getattr(registry.get(kind, name), "summary", "") or getattr(registry.get(kind, name), "help", ""), "plugin": registry.owner(kind, name)}
        for name in registry.names(kind)
    ]
    if args.json:
        _print_json(rows)
    for r in [] if args.json else rows:
        print(f"{r[kind]:<18} {r['summary']}  [plugin: {r['plugin']}]")
    return 0


def _describe(result: Any) -> str:
    text = result.caption()
    if result.face is not None:
        x1, y1, x2, y2 = result.face.box
        text += f"  (face at {x1:.0f},{y1:.0f}–{x2:.0f},{y2:.0f})"
    return text


def _how_to_train(task: str) -> str:
    """The command that trains ``task``, and the datasets registered for it."""
    datasets = [d.name for d in _plugins.registry().items("dataset") if d.task == task]
    known = f"{task}'s datasets: {', '.join(datasets)}" if datasets else f"no dataset is registered for {task}: see facezoo list datasets"
    return f"facezoo train {task} --dataset D --output runs/{task} ({known})"


def _cmd_predict(args: argparse.Namespace) -> int:
    if args.annotate and len(args.images) != 1:
        raise FacezooError(f"--annotate writes one picture: pass one image, not {len(args.images)}")
    options = {"runtime": args.runtime, "quantize": args.quantize}
    is_task = args.task in facezoo.list_tasks()
    if is_task and not args.untrained:
        weights = [m for m in facezoo.list_models(task=args.task) if args.backbone in (None, parse_model_id(m)[1])]
        if not weights:
            what = f"task {args.task!r}" + (f" with backbone {args.backbone!r}" if args.backbone else "")
            raise FacezooError(
                f"no pretrained weights are registered for {what}. Try the task with random weights: facezoo predict {args.task} "
                f"IMAGE --untrained{f' --backbone {args.backbone}' if args.backbone else ''}; or train it: {_how_to_train(args.task)}"
            )
    if args.backbone or args.untrained:
        model = facezoo.load(args.task, args.backbone, pretrained=not args.untrained, **options)
    else:
        model = facezoo.load(args.task, **options)
    if args.detector:
        model = model.with_preprocess(detector=args.detector)
    if not model.config.trained:
        task = model.config.task
        pretrained = facezoo.list_models(task=task, pretrained=True)
        print(
            f"WARNING: {model.config.model_id} is UNTRAINED (random weights): these numbers are meaningless. For real answers "
            + (f"use the pretrained model (facezoo predict {task} IMAGE, without --untrained; {pretrained[0]}) or " if pretrained else "")
            + f"train one: {_how_to_train(task)}",
            file=sys.stderr,
        )
    results = model.predict(list(args.images), detect=False if args.no_detect else None)
    if args.json:
        _print_json([{"image": _name(img), "faces": [r.to_dict() for r in faces]} for img, faces in zip(args.images, results, strict=True)])
    else:
        for image, faces in zip(args.images, results, strict=True):
            if not faces:
                print(f"{_name(image)}: no face found")
            for k, result in enumerate(faces):
                print(f"{_name(image)}{f' face {k + 1}' if len(faces) > 1 else ''}: {_describe(result)}")
    if args.annotate:
        _save_picture(facezoo.annotate(args.images[0], results[0]), args.annotate)
        print(f"annotated picture written to {_name(args.annotate)}", file=sys.stderr)
    return 0


def _save_picture(picture, path: str) -> None:
    from PIL import Image

    target = os.fspath(path)
    if os.path.isdir(target):
        raise FacezooError(f"--annotate {_name(target)!r} is a folder; give a file name such as out.jpg")
    extension = os.path.splitext(target)[1].lower()
    if extension not in Image.registered_extensions():
        raise FacezooError(f"--annotate {_name(target)!r}: unknown picture type {extension or '(no extension)'!r}; use .jpg or .png")
    folder = os.path.dirname(target) or "."
    if not os.path.isdir(folder):
        raise FacezooError(f"--annotate {_name(target)!r}: the folder {_name(folder)!r} does not exist")
    try:
        picture.save(target)
    except OSError as exc:
        raise FacezooError(f"--annotate {_name(target)!r} cannot be written ({exc})") from None


def _cmd_info(args: argparse.Namespace) -> int:
    model = facezoo.load(args.model, runtime="torch")
    config = model.config.to_dict()
    params = sum(p.numel() for p in model.network.parameters())
    if args.json:
        _print_json({"config": config, "parameters": params})
        return 0
    print(f"{model.config.model_id}  ({'trained' if model.config.trained else 'UNTRAINED'}, {params / 1e6:.2f} M parameters)")
    for key in ("task", "backbone", "head", "labels", "preprocess", "license", "datasets", "teachers", "metrics", "facezoo_version"):
        print(f"  {key}: {config[key]}")
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from ._hub import push_directory

    sha = push_directory(args.directory, args.repo_id, branch=args.branch, tag=args.tag, commit_message=args.message)
    print(f"pushed {args.directory} to {args.repo_id} at commit {sha}" + (f", tagged {args.tag}" if args.tag else ""))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .training import train
    from .training.settings import from_arguments

    settings = from_arguments(args)
    options = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name not in ("task", "dataset")}
    options.update(output_dir=args.output, data_root=args.data, stop_after=args.stop_after, progress=sys.stderr.isatty(), tensorboard=args.tensorboard)
    if args.nproc > 1:
        from .training.distributed import launch

        launch(args.nproc, train, settings.task, settings.dataset, **options)
    else:
        train(settings.task, settings.dataset, **options)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, process 0 speaks for all
        output = Path(args.output)
        print(f"model written to {output}" if (output / "model.safetensors").exists() else f"stopped; run the same command to resume {output}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .training import export

    if not (Path(args.run) / "training" / "settings.json").exists():
        return _export_model(args)
    target = export(args.run, args.target, half=args.half, data_root=args.data, checks=tuple(args.check or ()), onnx=args.format == "onnx", quantize=args.quantize)
    print(f"shipped model written to {target}")
    return 0


def _export_model(args: argparse.Namespace) -> int:
    """``facezoo export MODEL DIR --format onnx``: a model that is not a training run."""
    from .onnx_export import export_model_dir

    if args.format != "onnx":
        raise FacezooError(f"{args.run} is not a training run (no training/settings.json): export a model with --format onnx")
    calibration = check = None
    if args.calibration or args.check_faces:
        from .data.arrays import face_arrays
        from .training.data import Source

        transform = facezoo.load(args.run, runtime="torch").transform
        frame = lambda text: face_arrays(Source.parse(text).load(args.data), transform, progress=False).images  # noqa: E731
        calibration = frame(args.calibration) if args.calibration else None
        check = frame(args.check_faces) if args.check_faces else None
    target = export_model_dir(args.run, args.target, quantize=args.quantize, calibration=calibration, check_faces=check)
    print(f"model with its ONNX export written to {target}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    model = facezoo.load(args.model, runtime=args.runtime, quantize=args.quantize)
    if args.detector:
        model = model.with_preprocess(detector=args.detector)
    report = facezoo.evaluate(model, args.dataset, args.split, data_root=args.data, limit=args.limit, detect=args.detect, teacher=args.teacher)
    if args.json:
        _print_json(report.to_dict())
        return 0
    print(f"{report.model} on {report.dataset}/{report.split} ({report.protocol}, n={report.count})")
    for key, value in report.metrics.items():
        print(f"  {key}: {value:.4f}")
    if "detected" in report.extra:
        print(f"  a face was found in {report.extra['detected']:.1%} of the images (metrics over those faces)")
    for group, metrics in report.groups.items():
        print(f"  [{group}] " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return 0


def _add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtime", choices=("torch", "onnx"), help="default: onnx (torch needs facezoo[torch])")
    parser.add_argument("--quantize", choices=("int8",), help="the model's int8 version (ONNX Runtime), where it ships one")


def _cmd_serve(args: argparse.Namespace) -> int:
    from .serve import TOKEN_VARIABLE, ServeSettings, serve

    settings = ServeSettings(
        workers=args.workers,
        queue=args.queue,
        receiving=args.receiving,
        timeout=args.timeout,
        max_upload_bytes=round(args.max_upload_mb * 2**20),
        max_pixels=round(args.max_megapixels * 1e6), decode_side=args.decode_side or None,
        token=args.token or os.environ.get(TOKEN_VARIABLE) or None,
        cors_origins=tuple(args.cors_origin or ()),
        gallery=args.gallery,
        gallery_people=args.gallery_people,
        gallery_photos=args.gallery_photos,
        index=args.index,
    )
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    options: dict[str, Any] = {"backbone": args.backbone, "device": args.device}
    if args.untrained:
        from ._factory import list_tasks

        options["pretrained"] = False
        tasks = tasks or list_tasks()
    if args.runtime:
        options["runtime"] = args.runtime
    serve(tasks, host=args.host, port=args.port, settings=settings, log_level="info", **options)
    return 0


def _number(kind: type, low: float, high: float | None = None, *, above: bool = False):
    """An argparse type: ``kind`` (int or float) of at least ``low`` (above it with ``above``) and at most ``high``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") from None
        if (value <= low if above else value < low) or (high is not None and value > high) or value != value or value == float("inf"):
            bounds = f"{'above' if above else 'at least'} {low:g}" + (f" and at most {high:g}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value

    return parse


_positive = _number(int, 1)


def _cmd_index(args: argparse.Namespace) -> int:
    from .index import FaceIndex, build_index

    if args.action == "build":
        index = build_index(args.photos, args.output, model=args.model, engine=args.engine, workers=args.workers, ray_address=args.ray_address, progress=sys.stderr.isatty())
        info = index.info()
        if args.json:
            _print_json(info)
        else:
            print(f"{info['path']}: {info['faces']} faces of {info['model']['id']} in {info['segments']} segment(s), {info['bytes'] / 1e6:.2f} MB")
        return 0
    index = FaceIndex.open(args.index)
    if args.action == "info":
        info = index.info()
        if args.json:
            _print_json(info)
        else:
            for key, value in info.items():
                print(f"{key:<14}{value}")
        return 0
    if args.ef_search:
        index.ef_search = args.ef_search
    threshold = args.threshold if args.threshold is not None else getattr(index.model(), "threshold", None)
    per_face = index.search_photo(args.photo, top=args.top, threshold=threshold)
    if args.json:
        _print_json([[m.to_dict() for m in matches] for matches in per_face])
        return 0
    if not per_face:
        print(f"{_name(args.photo)}: no face found")
    for number, matches in enumerate(per_face, 1):
        print(f"{_name(args.photo)} face {number}: {len(matches)} match(es) at similarity >= {threshold}")
        for match in matches:
            print(f"  {match.similarity:.4f}  {match.metadata.get('image', match.id)} face {match.metadata.get('face_index', '?')}  (id {match.id})")
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    summary = facezoo.batch(
        args.tasks, args.input, args.output, engine=args.engine, workers=args.workers, threads=args.threads, batch_size=args.batch_size,
        chunk_size=args.chunk_size, ray_address=args.ray_address, runtime=args.runtime, device=args.device,
        gpus_per_worker=args.gpus_per_worker, keep_parts=args.keep_parts, overwrite=args.overwrite, progress=sys.stderr.isatty(),
    )
    if args.json:
        _print_json(summary.to_dict())
        return 0
    resumed = f", {summary.resumed_chunks} of {summary.chunks} chunks from an earlier run" if summary.resumed_chunks else ""
    print(
        f"{summary.rows} rows for {summary.images} images ({summary.faces} faces, {summary.no_face} images without a face, "
        f"{summary.errors} failed) written to {_name(str(summary.output))} in {summary.seconds:.1f} s{resumed}"
    )
    return 0


def _cmd_export_web(args: argparse.Namespace) -> int:
    from .web import export_web

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    target = export_web(args.directory, tasks, quantize=args.quantize, overwrite=args.overwrite)
    manifest = json.loads((target / "web" / "manifest.json").read_text(encoding="utf-8"))
    size = sum(f["bytes"] for f in manifest["files"].values()) + sum(p.stat().st_size for p in target.glob("*.html")) + sum(p.stat().st_size for p in (target / "static").iterdir())
    print(f"in-browser facezoo ({', '.join(m['task'] for m in manifest['models'])}) written to {target}: {size / 1e6:.1f} MB")
    for task, note in manifest.get("notes", {}).items():
        print(f"  {task}: {note}")
    print(f"try it: python -m http.server -d {target} 8000, then open http://127.0.0.1:8000/")
    return 0


CORE_COMMANDS = ("list", "predict", "info", "push", "train", "export", "eval", "serve", "batch", "index", "export-web")


def build_parser() -> argparse.ArgumentParser:
    from .training.settings import add_arguments as add_train_arguments

    parser = argparse.ArgumentParser(prog="facezoo", description="Face analysis models: list, predict, train, evaluate, share.")
    parser.add_argument("--version", action="version", version=f"facezoo {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what facezoo does")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list tasks, models, plugins, datasets, teachers, detectors, plugin backbones or plugin commands")
    p.add_argument("what", nargs="?", choices=("tasks", "models", "plugins", "datasets", "teachers", "detectors", "backbones", "commands"), default="tasks")
    p.add_argument("--filter", help="wildcard or substring on model ids")
    p.add_argument("--pretrained", action="store_true", help="only models whose weights load offline now")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("predict", help="run a model on images")
    p.add_argument("task", help="task name, model id, hf-hub:org/name[@rev] or a model directory")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--backbone", help="timm backbone name (with a task name and --untrained)")
    p.add_argument("--untrained", action="store_true", help="use an untrained model (random weights)")
    p.add_argument("--no-detect", action="store_true", help="treat each whole image as one face")
    p.add_argument("--detector", help="find faces with this registered detector instead of the model's (facezoo list detectors)")
    p.add_argument("--annotate", metavar="OUT", help="write the image with boxes, landmarks and labels drawn on it")
    _add_runtime_arguments(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("info", help="show a model's config")
    p.add_argument("model", help="model id, hf-hub:org/name[@rev] or a model directory")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("push", help="upload a model directory to the Hugging Face Hub")
    p.add_argument("directory")
    p.add_argument("repo_id")
    p.add_argument("--branch")
    p.add_argument("--tag")
    p.add_argument("--message")
    p.set_defaults(func=_cmd_push)

    p = sub.add_parser("train", help="train a model on registered data (resumable: run the same command again)")
    add_train_arguments(p)
    p.add_argument("--output", required=True, help="model directory to write (re-run to resume)")
    p.add_argument("--data", help="data root (default: $FACEZOO_DATA, else ../shared/data when it exists)")
    p.add_argument("--stop-after", type=_positive, help="stop after this many fine-tuning epochs (resume later)")
    p.add_argument("--nproc", type=_positive, default=1, help="train with this many processes on this machine (like torchrun --nproc-per-node)")
    p.add_argument("--tensorboard", metavar="DIR", help="also write the training curves to DIR for TensorBoard (pip install 'facezoo[tensorboard]')")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("export", help="write a trained run as it ships (float16), measured for its card")
    p.add_argument("run", help="output directory of facezoo train, or (with --format onnx) any model")
    p.add_argument("target", help="model directory to write")
    p.add_argument("--data", help="data root (default: $FACEZOO_DATA, else ../shared/data when it exists)")
    p.add_argument("--no-half", dest="half", action="store_false", help="keep float32 weights")
    p.add_argument("--check", nargs="+", metavar="DATASET:SPLIT[@TEACHER]", help="more evaluations for the card")
    p.add_argument("--format", choices=("safetensors", "onnx"), default="safetensors", help="onnx: also model.onnx, checked and measured")
    p.add_argument("--quantize", choices=("int8",), help="with --format onnx: also a static int8 model, shipped only if accurate enough")
    p.add_argument("--calibration", metavar="DATASET:SPLIT[:N]", help="int8 calibration faces when exporting a model that is not a run")
    p.add_argument("--check-faces", metavar="DATASET:SPLIT[:N]", help="faces to check the ONNX export on, for a model that is not a run")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("eval", help="evaluate a model on a dataset split, on the path predict takes")
    p.add_argument("model", help="task, model id, hf-hub:org/name[@rev] or a model directory")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--data", help="data root (default: $FACEZOO_DATA, else ../shared/data when it exists)")
    p.add_argument("--limit", type=_positive, help="evaluate a fixed random subset of this many samples")
    p.add_argument("--no-detect", dest="detect", action="store_false", help="feed each whole image as the face")
    p.add_argument("--detector", help="find faces with this registered detector instead of the model's (facezoo list detectors)")
    p.add_argument("--teacher", help="score against this teacher's labels instead of the dataset's")
    _add_runtime_arguments(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("serve", help="serve models over HTTP: a JSON API and a web page (pip install 'facezoo[serve]')")
    p.add_argument("--tasks", help="comma-separated tasks, model ids, hf-hub:org/name[@rev] or model directories "
                   "(default: every task whose pretrained model loads offline; with --untrained, every task)")
    p.add_argument("--backbone", help="timm backbone name (with --untrained)")
    p.add_argument("--untrained", action="store_true", help="serve untrained models (random weights): to try the server")
    p.add_argument("--device", help="cpu, cuda, cuda:1 or mps (default: cpu)")
    p.add_argument("--runtime", help="inference runtime handed to facezoo.load (for example onnxruntime, where facezoo supports it)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_number(int, 0, 65535), default=8000)
    p.add_argument("--workers", type=_positive, default=1, help="inference threads (default: 1)")
    p.add_argument("--queue", type=_number(int, 0), default=4, help="requests that may wait for a worker; more are answered 503 (default: 4)")
    p.add_argument("--receiving", type=_positive, default=16, help="request bodies received at once, before a worker is asked; more are answered 503 (default: 16)")
    p.add_argument("--timeout", type=_number(float, 0, above=True), default=30.0, help="seconds per request before a 504 (default: 30)")
    p.add_argument("--max-upload-mb", type=_number(float, 0, above=True), default=20.0, help="largest request body in MiB; larger is a 413 (default: 20)")
    p.add_argument("--max-megapixels", type=_number(float, 0, above=True), default=40.0, help="largest photo in megapixels; larger is a 413 (default: 40)")
    p.add_argument("--decode-side", type=_number(int, 0), default=2048, help="JPEGs longer decode smaller (1/2-1/8, still this long; answers in the photo's pixels); 0: whole (default 2048)")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on /v1 (better: set FACEZOO_SERVE_TOKEN, which ps cannot show)")
    p.add_argument("--cors-origin", action="append", metavar="ORIGIN", help="a web origin allowed to call the API from a browser (repeatable; default: none)")
    p.add_argument("--gallery", metavar="DIR", help="keeps enrolled people across restarts: a directory of face indexes, or a .json file (default: in memory only)")
    p.add_argument("--gallery-people", type=_positive, default=1000, help="most people in a model's gallery; more is a 409 (default: 1000)")
    p.add_argument("--gallery-photos", type=_positive, default=10, help="most embeddings per enrolled person; more is a 409 (default: 10)")
    p.add_argument("--index", metavar="IDX", help="a face index (facezoo index build) for /v1/search")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("export-web", help="write a static site that analyses faces in the browser itself (onnxruntime-web; no server, no upload)")
    p.add_argument("directory", help="the folder to write (new or empty; --overwrite to replace an export)")
    p.add_argument("--tasks", help="comma-separated tasks (default: every task whose shipped model runs in the browser)")
    p.add_argument("--quantize", choices=("int8",), help="take each task's int8 model where one ships (smaller download; the others stay float)")
    p.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty")
    p.set_defaults(func=_cmd_export_web)

    p = sub.add_parser("batch", help="analyse a folder or manifest of photos into one table (resumable: run the same command again)")
    p.add_argument("tasks", help="comma-separated task names, model ids, hf-hub:org/name or model directories, e.g. age-gender,expression")
    p.add_argument("--input", required=True, help="folder of images, or manifest .csv/.jsonl/.parquet with a path column (and optional id)")
    p.add_argument("--output", required=True, help="OUT.parquet or OUT.jsonl; finished chunks wait in OUT.parts/ until the end")
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="worker processes on this machine, or a Ray Data actor pool")
    p.add_argument("--workers", type=_positive, help="worker processes or Ray actors (default: local one per CPU up to 8, Ray fills the cluster)")
    p.add_argument("--threads", type=_positive, default=1, help="torch CPU threads per worker, and CPUs per Ray actor (default 1)")
    p.add_argument("--batch-size", type=_positive, help="images per unit of work (default 16, or the largest divisor of --chunk-size up to 16)")
    p.add_argument("--chunk-size", type=_positive,
                   help="images per part file, a multiple of --batch-size (default: a twentieth of the images in whole batches, at most 512)")
    p.add_argument("--ray-address", help="an existing Ray cluster ('auto', or HOST:PORT); default: a local Ray on 127.0.0.1")
    p.add_argument("--gpus-per-worker", type=float, help="Ray: GPUs per actor (default 1 with a cuda --device, else 0)")
    p.add_argument("--runtime", choices=("torch", "onnx"), help="default: onnx (torch needs facezoo[torch])")
    p.add_argument("--device", help="device passed to facezoo.load, e.g. cuda")
    p.add_argument("--keep-parts", action="store_true", help="keep OUT.parts/ after writing OUT")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (else an existing OUT is refused)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_batch)

    p = sub.add_parser("index", help="face indexes: build one from photos (resumable, via batch), search it with a photo (pip install 'facezoo[index]')")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("build", help="index every face of a folder or manifest of photos (over an existing index: only the new photos)")
    a.add_argument("photos", help="folder of images, or manifest .csv/.jsonl/.parquet with a path column (and optional id)")
    a.add_argument("--output", required=True, help="the index directory")
    a.add_argument("--model", help="identity model whose embeddings are indexed (default: the index's, else the default identity model)")
    a.add_argument("--engine", choices=("local", "ray"), default="local", help="facezoo batch's engine for the embedding")
    a.add_argument("--workers", type=_positive, help="worker processes or Ray actors")
    a.add_argument("--ray-address", help="an existing Ray cluster; default: a local Ray on 127.0.0.1")
    a.add_argument("--json", action="store_true", help="print the index's info as JSON")
    a = actions.add_parser("search", help="the indexed faces closest to each face of a photo")
    a.add_argument("index", help="the index directory")
    a.add_argument("photo", help="the photo to search with")
    a.add_argument("--top", type=_positive, default=10, help="matches per face (default 10)")
    a.add_argument("--threshold", type=float, help="least cosine similarity (default: the model's verification threshold)")
    a.add_argument("--ef-search", type=_positive, help="HNSW candidates kept per search: higher is slower and closer to exact (default 256)")
    a.add_argument("--json", action="store_true", help="print the matches as JSON")
    a = actions.add_parser("info", help="the model, the faces and the size of an index")
    a.add_argument("index", help="the index directory")
    a.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=_cmd_index)

    registry = _plugins.registry()
    for name in registry.names("command"):
        spec = registry.get("command", name)
        if name in CORE_COMMANDS:
            raise FacezooError(f"plugin {registry.owner('command', name)!r} registers the command {name!r}, which is facezoo's own")
        p = sub.add_parser(name, help=f"{spec.help} [plugin: {registry.owner('command', name)}]")
        spec.add_arguments(p)
        p.set_defaults(func=spec.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``facezoo`` command."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        return args.func(args)
    except FacezooError as exc:
        print(f"facezoo: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("facezoo: interrupted", file=sys.stderr)
        return 130

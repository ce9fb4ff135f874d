"""The ``facezoo`` command line: mirrors the Python API.

    facezoo list [tasks|models|plugins] [--pretrained] [--json]
    facezoo predict TASK IMAGE... [--backbone B] [--untrained] [--no-detect] [--json]
    facezoo info MODEL [--json]
    facezoo push DIR REPO_ID [--branch B] [--tag T]
    facezoo train TASK --dataset D --output DIR [--backbone B] [--finetune-epochs N] ...
    facezoo export RUN_DIR TARGET_DIR [--no-half]
    facezoo distill --output DIR [--backbone B] [--input-size H W] [--epochs N] [--export TARGET_DIR] ...
    facezoo eval MODEL --dataset D [--split S] [--limit N] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from .errors import FacezooError


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _cmd_list(args: argparse.Namespace) -> int:
    import facezoo

    if args.what == "tasks":
        from . import _plugins

        registry = _plugins.registry()
        rows = [{"task": n, "summary": registry.get("task", n).summary, "plugin": registry.owner("task", n)} for n in registry.names("task")]
        if args.json:
            _print_json(rows)
        else:
            for r in rows:
                print(f"{r['task']:<12} {r['summary']}  [plugin: {r['plugin']}]")
    elif args.what == "models":
        from . import _plugins

        registry = _plugins.registry()
        ids = facezoo.list_models(args.filter or "", pretrained=args.pretrained)
        rows = [{"model": i, "default": registry.get("model", i).default, "source": registry.get("model", i).source} for i in ids]
        if args.json:
            _print_json(rows)
        elif not rows:
            print("no pretrained models are registered" + (" matching " + repr(args.filter) if args.filter else ""))
        else:
            for r in rows:
                print(f"{r['model']}{'  (default)' if r['default'] else ''}")
    else:
        infos = facezoo.list_plugins()
        if args.json:
            _print_json([p.to_dict() for p in infos])
        else:
            for p in infos:
                print(f"{p.name:<12} {p.distribution} {p.version}  hooks: {', '.join(p.hooks)}")
    return 0


def _format_result(result: Any) -> str:
    data = result.to_dict()
    skip = {"model", "trained", "face", "distribution", "embedding", "probabilities", "points"}
    fields = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in data.items() if k not in skip)
    if "embedding" in data:
        fields = f"embedding[{len(data['embedding'])}]" + (", " + fields if fields else "")
    if "points" in data:
        fields = f"{len(data['points'])} points, first {data['points'][0]}"
    if data.get("face"):
        x1, y1, x2, y2 = data["face"]["box"]
        fields += f"  (face at {x1:.0f},{y1:.0f}–{x2:.0f},{y2:.0f})"
    return fields


def _cmd_predict(args: argparse.Namespace) -> int:
    import facezoo

    model = facezoo.load(args.task, args.backbone, pretrained=not args.untrained)
    if args.annotate and len(args.images) != 1:
        raise FacezooError(f"--annotate writes one picture: pass one image, not {len(args.images)}")
    if not model.config.trained:
        print(
            f"WARNING: {model.config.model_id} is UNTRAINED (random weights): these numbers are meaningless.",
            file=sys.stderr,
        )
    results = model.predict(list(args.images), detect=False if args.no_detect else None)
    if args.annotate:
        facezoo.annotate(args.images[0], results[0]).save(args.annotate)
        print(f"annotated picture written to {args.annotate}", file=sys.stderr)
    verification = None
    if hasattr(model, "verify") and len(args.images) == 2 and all(results):
        # Two photos to an identity model: same person or not (the main face of each).
        import numpy as np

        similarity = float(np.dot(results[0][0].embedding, results[1][0].embedding))
        verification = {"same": similarity >= model.threshold, "similarity": round(similarity, 4), "threshold": model.threshold}
    if args.json:
        output = [{"image": str(img), "faces": [r.to_dict() for r in faces]} for img, faces in zip(args.images, results)]
        _print_json({"images": output, "verification": verification} if verification else output)
        return 0
    for image, faces in zip(args.images, results):
        if not faces:
            print(f"{image}: no face found")
        for k, result in enumerate(faces):
            label = f"{image}" + (f" face {k + 1}" if len(faces) > 1 else "")
            print(f"{label}: {_format_result(result)}")
    if verification:
        verdict = "the same person" if verification["same"] else "different people"
        print(f"=> {verdict}: similarity {verification['similarity']:.3f} (threshold {verification['threshold']:.3f})")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    import facezoo

    model = facezoo.load(args.model)
    config = model.config.to_dict()
    params = sum(p.numel() for p in model.parameters())
    if args.json:
        _print_json({"config": config, "parameters": params})
        return 0
    print(f"{model.config.model_id}  ({'trained' if model.config.trained else 'UNTRAINED'}, {params / 1e6:.2f} M parameters)")
    for key in ("task", "backbone", "head", "labels", "preprocess", "license", "datasets", "metrics", "facezoo_version"):
        print(f"  {key}: {config[key]}")
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from ._hub import push_directory

    sha = push_directory(args.directory, args.repo_id, branch=args.branch, tag=args.tag, commit_message=args.message)
    print(f"pushed {args.directory} to {args.repo_id} at commit {sha}" + (f", tagged {args.tag}" if args.tag else ""))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from ._train import TrainSettings, train

    options = {}
    for f in dataclasses.fields(TrainSettings):
        if f.name in ("task", "dataset"):
            continue
        value = getattr(args, f.name, None)
        if value is not None:
            options[f.name] = tuple(value) if f.name == "input_size" else value
    if isinstance(options.get("head"), str):
        options["head"] = json.loads(options["head"])
    output = train(args.task, args.dataset, output_dir=args.output, data_root=args.data, stop_after=args.stop_after, **options)
    print(f"model written to {output}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from ._train import export

    target = export(args.run, args.target, half=args.half, data_root=args.data)
    print(f"shipped model written to {target}")
    return 0


def _cmd_distill(args: argparse.Namespace) -> int:
    import dataclasses

    from .distill import DistillSettings, distill, export

    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(DistillSettings) if getattr(args, f.name, None) is not None}
    output = distill(output_dir=args.output, data_root=args.data, stop_after=args.stop_after, **options)
    print(f"model written to {output}")
    if args.export and (output / "model.safetensors").exists():
        print(f"shipped model written to {export(output, args.export, data_root=args.data)}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import facezoo

    model = facezoo.load(args.model)
    report = facezoo.evaluate(model, args.dataset, args.split, data_root=args.data, limit=args.limit, detect=args.detect)
    if args.json:
        _print_json(report.to_dict())
        return 0
    print(f"{report.model} on {report.dataset}/{report.split} ({report.protocol}, n={report.count})")
    for key, value in report.metrics.items():
        print(f"  {key}: {value:.4f}")
    if "detected" in report.extra:
        print(f"  face found in {report.extra['detected']:.1%} of the images (the others use the whole image)")
    for group, metrics in report.groups.items():
        print(f"  [{group}] " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="facezoo", description="Face analysis models: list, predict, inspect, push.")
    parser.add_argument("--version", action="version", version=f"facezoo {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what facezoo does")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list tasks, models or plugins")
    p.add_argument("what", nargs="?", choices=("tasks", "models", "plugins"), default="tasks")
    p.add_argument("--filter", help="wildcard or substring on model ids")
    p.add_argument("--pretrained", action="store_true", help="only models whose weights load offline now")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("predict", help="run a model on images")
    p.add_argument("task", help="task name, model id, hf-hub:org/name[@rev] or a model directory")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--backbone", help="timm backbone name")
    p.add_argument("--untrained", action="store_true", help="use an untrained model (random weights)")
    p.add_argument("--no-detect", action="store_true", help="treat each image as one pre-cropped face")
    p.add_argument("--annotate", metavar="OUT", help="write the image with boxes, landmarks and labels drawn on it")
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

    p = sub.add_parser("train", help="train a model on a registered dataset (two stages, resumable)")
    p.add_argument("task")
    p.add_argument("--dataset", required=True)
    p.add_argument("--output", required=True, help="model directory to write (re-run to resume)")
    p.add_argument("--data", help="data root (default: $FACEZOO_DATA)")
    p.add_argument("--backbone")
    for name in ("train-split", "val-split", "test-split", "test-dataset", "init", "tag"):
        p.add_argument(f"--{name}")
    for name in ("head-epochs", "finetune-epochs", "batch-size", "seed", "limit", "stop-after"):
        p.add_argument(f"--{name}", type=int)
    for name in ("head-lr", "finetune-lr", "weight-decay", "val-fraction"):
        p.add_argument(f"--{name}", type=float)
    p.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"))
    p.add_argument("--head", help='head arguments as JSON, e.g. \'{"bins": 5}\'')
    p.add_argument("--no-augment", dest="augment", action="store_false", default=None)
    p.add_argument("--detect", action="store_true", default=None, help="train on detector crops, as predict() sees raw photos")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("export", help="write a trained run as it ships (float16), re-evaluated for its card")
    p.add_argument("run", help="output directory of facezoo train")
    p.add_argument("target", help="model directory to write")
    p.add_argument("--data", help="data root (default: $FACEZOO_DATA)")
    p.add_argument("--no-half", dest="half", action="store_false", help="keep float32 weights")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("distill", help="distil the dlib face-recognition teacher into a timm identity student (resumable)")
    p.add_argument("--output", required=True, help="model directory to write (re-run to resume)")
    p.add_argument("--data", help="data root (default: $FACEZOO_DATA)")
    p.add_argument("--backbone")
    p.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"))
    p.add_argument("--sources", nargs="+", metavar="DATASET:SPLIT[:LIMIT]", help="student images (never lfw or fewshot-five)")
    for name in ("val-identities", "epochs", "batch-size", "seed", "stop-after"):
        p.add_argument(f"--{name}", type=int)
    for name in ("lr", "weight-decay", "relational"):
        p.add_argument(f"--{name}", type=float)
    p.add_argument("--tag")
    p.add_argument("--init", help="'imagenet' (default), 'random' or a .safetensors file of backbone weights")
    p.add_argument("--no-augment", dest="augment", action="store_false", default=None)
    p.add_argument("--no-align", dest="align", action="store_false", default=None, help="student sees the whole pre-cropped images")
    p.add_argument("--export", metavar="TARGET_DIR", help="then write the student as it ships (float16), measured side by side with the teacher")
    p.set_defaults(func=_cmd_distill)

    p = sub.add_parser("eval", help="evaluate a model on a dataset split")
    p.add_argument("model", help="task, model id, hf-hub:org/name[@rev] or a model directory")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--data", help="data root (default: $FACEZOO_DATA)")
    p.add_argument("--limit", type=int, help="evaluate a fixed random subset of this many samples")
    p.add_argument("--detect", action="store_true", help="detect and crop faces as in inference instead of using the pre-cropped images")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``facezoo`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except FacezooError as exc:
        print(f"facezoo: error: {exc}", file=sys.stderr)
        return 2

"""Everything that determines a training run, and the ``facezoo train`` options made from it.

The command-line options are generated from :class:`TrainSettings`, and
:func:`command_line` writes the command that reproduces a run from the same parser, so the
command a card prints always parses back to the settings it came from.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from ..errors import FacezooError


def _option(help: str, **kwargs: Any) -> Any:
    default = kwargs.pop("default", None)
    if "default_factory" in kwargs:
        return field(default_factory=kwargs.pop("default_factory"), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainSettings:
    """The settings of a training run (saved as ``training/settings.json``; a run refuses others)."""

    task: str
    dataset: str
    train_split: str = _option("split of --dataset to train on", default="train")
    extra_data: tuple[str, ...] = _option("more training faces, dataset:split[:limit] (labelled by --teacher)", default_factory=tuple)
    teacher: str | None = _option("a registered teacher whose labels the model learns (facezoo list teachers)")
    gt_weight: float = _option("weight of a dataset label where a face also has a teacher label", default=0.5)
    val: str | None = _option("validation faces, dataset:split[:limit] (default: the dataset's val split, else --val-fraction of training)")
    val_fraction: float = _option("share of the training split held out for validation when there is no val split", default=0.1)
    test_split: str | None = _option("split of --test-dataset evaluated at the end ('none' to skip)", default="test")
    test_dataset: str | None = _option("dataset evaluated at the end (default: --dataset)")
    backbone: str | None = _option("timm backbone (default: the task's)")
    init: str = _option(
        "'imagenet', 'random', a facezoo model directory (its backbone and normalisation: e.g. another task's model), "
        "or a .safetensors file of timm-named backbone weights (ImageNet normalisation)",
        default="imagenet",
    )
    input_size: tuple[int, int] | None = _option("model input height and width")
    preprocess: dict[str, Any] = _option('framing overrides as JSON, e.g. \'{"crop": "align", "scale": 0.75}\'', default_factory=dict)
    head: dict[str, Any] = _option("head arguments as JSON", default_factory=dict)
    freeze: int = _option("backbone stages kept frozen; their output is computed once, so epochs are cheap", default=0)
    views: int = _option("with --freeze: randomly moved copies cached per face (besides the face and its mirror image)", default=2)
    head_epochs: int = _option("epochs of the head alone on frozen pooled features", default=10)
    finetune_epochs: int = _option("epochs of fine-tuning (the whole network, or what --freeze leaves)", default=10)
    batch_size: int = _option("fine-tuning batch size", default=64)
    head_lr: float = _option("learning rate of the head stage", default=3e-3)
    finetune_lr: float = _option("peak learning rate of fine-tuning (one-cycle)", default=5e-4)
    weight_decay: float = _option("AdamW weight decay", default=1e-4)
    augment: bool = _option("flips and small moves while training", default=True)
    balance: float = _option(
        "draw training faces by group (the task's sample_groups: age band, expression class), each face weighing "
        "its group's share to the power -BALANCE: 0 draws uniformly, 1 draws every group equally often",
        default=0.0,
    )
    monitor: str | None = _option("validation metric that picks the best epoch, metric:max or metric:min (default: the task's)")
    limit: int | None = _option("at most this many training faces (quick runs)")
    seed: int = _option("random seed (runs are deterministic for a seed)", default=0)
    tag: str | None = _option("tag of the model id task/backbone.tag")

    def __post_init__(self) -> None:
        for name, low in (("val_fraction", 0.0), ("gt_weight", 0.0), ("balance", 0.0)):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not low <= value <= 1.0:
                raise FacezooError(f"{name} must be between {low} and 1, got {value!r}")
        for name in ("head_epochs", "finetune_epochs", "freeze", "views", "seed"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise FacezooError(f"{name} must be a whole number of at least 0, got {getattr(self, name)!r}")
        if self.batch_size < 1 or (self.limit is not None and self.limit < 1):
            raise FacezooError("batch_size and limit must be at least 1")
        object.__setattr__(self, "extra_data", tuple(self.extra_data))
        if self.input_size is not None:
            object.__setattr__(self, "input_size", tuple(self.input_size))
        if self.test_split in ("none", ""):
            object.__setattr__(self, "test_split", None)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=list)

    @classmethod
    def from_json(cls, text: str) -> TrainSettings:
        data = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one option per :class:`TrainSettings` field to the ``facezoo train`` parser."""
    parser.add_argument("task")
    parser.add_argument("--dataset", required=True, help="the task's labelled dataset (facezoo list datasets)")
    for f in dataclasses.fields(TrainSettings):
        if f.name in ("task", "dataset"):
            continue
        flag, help = "--" + f.name.replace("_", "-"), f.metadata.get("help", "")
        if f.type in ("bool",):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help)
        elif f.name == "input_size":
            parser.add_argument(flag, dest=f.name, type=int, nargs=2, metavar=("H", "W"), help=help)
        elif f.name == "extra_data":
            parser.add_argument(flag, dest=f.name, nargs="+", metavar="DATASET:SPLIT[:LIMIT]", help=help)
        elif f.name in ("head", "preprocess"):
            parser.add_argument(flag, dest=f.name, type=_json_object, help=help)
        else:
            kind = {"int": int, "int | None": int, "float": float}.get(str(f.type), str)
            parser.add_argument(flag, dest=f.name, type=kind, help=help)


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object such as '{\"bins\": 5}'")
    return value


def from_arguments(args: argparse.Namespace) -> TrainSettings:
    """The settings an argparse namespace of :func:`add_arguments` describes."""
    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainSettings) if getattr(args, f.name, None) is not None}
    return TrainSettings(**options)


def command_line(settings: TrainSettings) -> str:
    """The ``facezoo train`` command that reproduces ``settings`` (defaults left out).

    Example:
        >>> command_line(TrainSettings("beauty", "scut-fbp5500", finetune_epochs=3))
        'facezoo train beauty --dataset scut-fbp5500 --finetune-epochs 3'
    """
    defaults = TrainSettings(task=settings.task, dataset=settings.dataset)
    parts = ["facezoo", "train", settings.task, "--dataset", settings.dataset]
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if f.name in ("task", "dataset") or value == getattr(defaults, f.name):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else f"--no-{f.name.replace('_', '-')}")
        elif value is None:
            parts += [flag, "none"]
        elif isinstance(value, (tuple, list)):
            parts += [flag, *map(str, value)]
        elif isinstance(value, dict):
            parts += [flag, json.dumps(value, separators=(",", ":"), sort_keys=True)]
        else:
            parts += [flag, str(value)]
    return shlex.join(parts)

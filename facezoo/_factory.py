"""``facezoo.load`` and the listings: the one public way to get a model.

This is the only module that composes the layers: where a model comes from (a registered id, a
local directory or the Hub, :mod:`facezoo._hub`), how its files are read
(:mod:`facezoo._model_dir`) and how the network is built (:mod:`facezoo._model`).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _plugins
from ._backbone import check_backbone
from ._cache import cache_dir
from ._hub import HF_PREFIX, download, parse_hub_id
from ._model import FaceModel
from ._model_dir import CONFIG_NAME, WEIGHTS_NAME, read_config, read_weights
from ._onnx import INT8_NAME, ONNX_NAME, OnnxNetwork, available, check_stamp, export_network, graph_key, weights_digest, write_stamp
from .config import ModelConfig
from .errors import FacezooError, WeightsError, needs_torch, unknown_name
from .registry import MODEL_ID, PretrainedSpec, TaskSpec, parse_model_id

if TYPE_CHECKING:  # for annotations only: torch is imported on first use (import speed)
    import torch


def _model_class(spec: TaskSpec) -> type[FaceModel]:
    cls = spec.model_class
    if cls is None:
        return FaceModel
    if isinstance(cls, str):
        module, _, name = cls.partition(":")
        cls = getattr(importlib.import_module(module), name)
    return cls


def build_model(config: ModelConfig, network: Any = None) -> FaceModel:
    """A model of the class the config's task asks for: an untrained torch network, or ``network``."""
    spec = _plugins.registry().get("task", config.task, hint="Is the plugin that provides it installed? See facezoo list plugins")
    return _model_class(spec)(config, network)


def load_state(model: FaceModel, state: dict, source: str) -> FaceModel:
    """Load ``state`` into ``model``'s torch network strictly; a mismatch names the keys and the source."""
    expected = model.network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        raise WeightsError(
            f"{source} does not match {model.config.model_id}: missing keys {missing[:8]}, unexpected keys "
            f"{unexpected[:8]}, wrong shapes {wrong[:8]}. Was config.json edited, or the file truncated?"
        )
    model.network.load_state_dict(state, strict=True)
    return model


def onnx_file(directory: str | Path, quantize: str | None = None, config=None, digest: str | None = None) -> Path:
    """The ONNX file of a model directory, checked against its weights (building it on a cache
    miss is the factory's job: it loads the torch model to export).

    float32: the directory's ``model.onnx`` if it has one, else one built once into
    ``$FACEZOO_CACHE/onnx`` keyed by the weights and the graph's part of the config
    (:func:`facezoo._onnx.graph_key`, so an edited config.json never reuses a stale graph; needs torch that one
    time). int8: the directory's ``model.int8.onnx`` (built with calibration faces by ``facezoo
    export --quantize int8``; it is never built on the fly). ``config`` is the directory's
    (read from it when not given), ``digest`` its weights' sha256 (computed when not given).
    """
    directory = Path(directory)
    digest = digest or weights_digest(directory)
    if quantize == "int8":
        path = directory / INT8_NAME
        if not path.exists():
            raise WeightsError(
                f"{directory} has no {INT8_NAME}: int8 models are built with calibration faces by "
                "facezoo export RUN TARGET --format onnx --quantize int8 (or load it with quantize=None)"
            )
        check_stamp(path, digest)
        return path
    shipped = directory / ONNX_NAME
    if shipped.exists():
        check_stamp(shipped, digest)
        return shipped
    if config is None:
        config = read_config(directory)
    cached = cache_dir("onnx") / f"{graph_key(digest, config)}.onnx"
    if not cached.exists():
        with needs_torch(f"{directory}: it ships no {ONNX_NAME}, and building one from its weights"):
            importlib.import_module("torch")
        export_network(load_directory(directory), cached)
        write_stamp(cached, digest, source=str(directory), model_id=config.model_id)
    check_stamp(cached, digest)
    return cached



def load_directory(directory: str | os.PathLike, runtime: str = "torch", quantize: str | None = None) -> FaceModel:
    """The model stored in a local Hub-layout directory, on PyTorch or ONNX Runtime."""
    config = read_config(directory)
    digest = weights_digest(directory)  # once: the ONNX file's stamp is checked against it, and the model keeps it
    if runtime == "onnx":
        model = build_model(config, OnnxNetwork(onnx_file(directory, quantize, config, digest)))  # checks the head arguments
        width = model.task.width(config.head)
        if width is not None:
            model.network.expect_output_width(width, f"the {config.task} head of {Path(directory) / CONFIG_NAME}")
    elif quantize is not None:
        raise FacezooError(f"quantize={quantize!r} needs runtime='onnx' (int8 models run on ONNX Runtime)")
    else:
        model = load_state(build_model(config), read_weights(directory), str(Path(directory) / WEIGHTS_NAME))
    model.weights_sha256 = digest
    return model


def new_config(task: str, backbone: str | None = None, **head_kwargs: Any) -> ModelConfig:
    """The config of an untrained ``task`` model on ``backbone`` (the task's default when ``None``).

    Example:
        >>> new_config("expression", "resnet18").labels[:2]
        ('angry', 'disgust')
    """
    spec = _plugins.registry().get("task", task)
    backbone = backbone or spec.default_backbone
    check_backbone(backbone)
    arguments = spec.arguments
    unknown = set(head_kwargs) - set(arguments)
    if unknown:
        raise FacezooError(f"task {task!r} has no head arguments {sorted(unknown)}; valid: {sorted(arguments) or 'none'}")
    return ModelConfig(task=task, backbone=backbone, head={**arguments, **head_kwargs}, labels=tuple(spec.labels), preprocess=spec.preprocess, trained=False)


def _pretrained_for(task: str, backbone: str | None) -> PretrainedSpec:
    registry = _plugins.registry()
    specs = [s for s in registry.items("model") if s.task == task and (backbone is None or s.backbone == backbone)]
    if not specs:
        others = [s.model_id for s in registry.items("model") if s.task == task]
        what = f"task {task!r}" + (f" with backbone {backbone!r}" if backbone else "")
        raise WeightsError(
            f"no pretrained weights are registered for {what}"
            + (f" (registered: {', '.join(others)})" if others else "")
            + f". For an untrained model use facezoo.load({task!r}"
            + (f", {backbone!r}" if backbone else "")
            + ", pretrained=False) and train it (facezoo.train)."
        )
    defaults = [s for s in specs if s.default]
    return (defaults or specs)[0]


def _load_source(source: str, revision: str | None, runtime: str, quantize: str | None) -> FaceModel:
    if source.startswith(HF_PREFIX):
        repo_id, pinned = parse_hub_id(source)
        return load_directory(download(repo_id, revision or pinned), runtime, quantize)
    return load_directory(source, runtime, quantize)


RUNTIMES = ("torch", "onnx")


def default_runtime() -> str:
    """``"onnx"`` (onnxruntime is a core dependency), or ``"torch"`` where it was uninstalled."""
    return "onnx" if available() else "torch"


def check_device(device: Any) -> torch.device:
    """``device`` as a ``torch.device`` that exists on this machine, or a :class:`FacezooError`."""
    with needs_torch(f"device={device!r} (models run on torch there; on the CPU, leave device unset for ONNX Runtime)"):
        import torch

    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise FacezooError(f"device {device!r} is not a device name ({exc}); use 'cpu', 'cuda', 'cuda:0' or 'mps'") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise FacezooError(f"device {str(device)!r}: this machine has no usable CUDA GPU; use device='cpu'")
        if device.index is not None and device.index >= count:
            raise FacezooError(f"device {str(device)!r}: this machine has {count} CUDA GPU(s), numbered 0 to {count - 1}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise FacezooError("device 'mps': Apple's Metal backend is not available here; use device='cpu'")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise FacezooError(f"device {str(device)!r} is not supported by facezoo; use 'cpu', 'cuda' or 'mps'")
    return device


def load(
    task: str | os.PathLike,
    backbone: str | None = None,
    *,
    pretrained: bool = True,
    revision: str | None = None,
    device: str | None = None,
    runtime: str | None = None,
    quantize: str | None = None,
    **head_kwargs: Any,
) -> FaceModel:
    """Load a face model.

    ``task`` is a task name (``"beauty"``), a model id (``"beauty/efficientnet_lite0.scut5500"``),
    ``"hf-hub:org/name[@revision]"`` or a local model directory. ``backbone`` is any timm model
    name (with a task name only). ``pretrained=True`` never silently gives random weights: it raises
    if no weights are registered; ``pretrained=False`` builds an untrained model
    (``model.config.trained`` is False).

    Example:
        >>> model = facezoo.load("age-gender", "resnet18", pretrained=False)
        >>> model.config.model_id
        'age-gender/resnet18'
    """
    if not isinstance(task, (str, os.PathLike)):
        raise FacezooError(
            f"load() takes a task name, model id, 'hf-hub:org/name' or a model directory, not {type(task).__name__} {task!r}. "
            "See facezoo.list_tasks() and facezoo.list_models()"
        )
    name = os.fspath(task)
    registry = _plugins.registry()
    is_task = name in registry.names("task")
    fixed = name.startswith(HF_PREFIX) or name in registry.names("model") or os.sep in name or Path(name).exists()
    if not is_task and not fixed:
        raise unknown_name("task", name, registry.names("task"), hint="See facezoo.list_tasks(); or pass a model id, 'hf-hub:org/name' or a model directory")
    if (backbone is not None or not pretrained) and not is_task:
        raise FacezooError(
            f"backbone= and pretrained=False apply to a task name; {name!r} is a fixed model (its backbone and weights "
            "are stored with it). Pass a task name, e.g. facezoo.load('beauty', 'resnet50', pretrained=False)."
        )
    if runtime is None:
        runtime = default_runtime() if pretrained else "torch"
    if runtime not in RUNTIMES:
        raise FacezooError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if quantize not in (None, "int8"):
        raise FacezooError(f"quantize must be None or 'int8', got {quantize!r}")
    if runtime == "onnx" and device not in (None, "cpu"):
        raise FacezooError(f"the ONNX runtime runs on the CPU here; device={device!r} needs runtime='torch'")
    if is_task:
        if pretrained:
            model = _load_source(_pretrained_for(name, backbone).source, revision, runtime, quantize)
        elif runtime == "onnx":
            raise FacezooError("an untrained model (pretrained=False) is for training and runs on torch; pass runtime='torch'")
        else:
            model = build_model(new_config(name, backbone, **head_kwargs))
            head_kwargs = {}
    elif name.startswith(HF_PREFIX):
        model = _load_source(name, revision, runtime, quantize)
    elif name in registry.names("model"):
        model = _load_source(registry.get("model", name).source, revision, runtime, quantize)
    else:
        if MODEL_ID.match(name) and parse_model_id(name)[0] in registry.names("task") and not Path(name).exists():
            raise unknown_name("model", name, registry.names("model"), hint="See facezoo.list_models()")
        model = load_directory(Path(name).expanduser(), runtime, quantize)
    if head_kwargs:
        raise FacezooError(
            f"head arguments {sorted(head_kwargs)} cannot change a pretrained model's head; pass pretrained=False to build a new head."
        )
    if model.runtime == "torch":
        import torch

        if device is not None:
            model.to(check_device(device))
        model.network.to(memory_format=torch.channels_last).eval()
    return model


def list_tasks() -> list[str]:
    """Names of the registered tasks.

    Example:
        >>> facezoo.list_tasks()
        ['age-gender', 'beauty', 'expression', 'identity', 'keypoints']
    """
    return _plugins.registry().names("task")


def available_offline(spec: PretrainedSpec) -> bool:
    """Whether a registered model's weights load right now without the network."""
    if not spec.source.startswith(HF_PREFIX):
        return (Path(spec.source) / WEIGHTS_NAME).exists()
    from huggingface_hub import try_to_load_from_cache

    repo_id, revision = parse_hub_id(spec.source)
    return isinstance(try_to_load_from_cache(repo_id, WEIGHTS_NAME, revision=revision), str)


def list_models(filter: str = "", task: str | None = None, pretrained: bool = False) -> list[str]:
    """Ids of the registered models, ``task/backbone.tag``; ``filter`` is a wildcard or substring.

    ``pretrained=True`` keeps only models whose weights load right now without the network
    (shipped in a package or already in the Hugging Face cache).

    Example:
        >>> facezoo.list_models("beauty/*")  # doctest: +SKIP
        ['beauty/efficientnet_lite0.face-init']
    """
    registry = _plugins.registry()
    ids = registry.names("model", filter)
    if task is not None:
        registry.get("task", task)
        ids = [i for i in ids if parse_model_id(i)[0] == task]
    if pretrained:
        ids = [i for i in ids if available_offline(registry.get("model", i))]
    return ids

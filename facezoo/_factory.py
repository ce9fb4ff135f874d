"""``facezoo.load`` and the listings: the one public way to get a model."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from . import _plugins
from ._backbone import check_backbone
from ._hub import download, load_model_dir, split_revision
from .config import ModelConfig
from .errors import FacezooError, WeightsError, unknown_name
from .registry import PretrainedSpec, TaskSpec, parse_model_id

HF_PREFIX = "hf-hub:"


def _model_class(spec: TaskSpec):
    from ._model import FaceModel

    cls = spec.model_class
    if cls is None:
        return FaceModel
    if isinstance(cls, str):
        module, _, name = cls.partition(":")
        cls = getattr(importlib.import_module(module), name)
    return cls


def build_model(config: ModelConfig):
    """An (untrained) model of the class the config's task asks for."""
    spec = _plugins.registry().get("task", config.task)
    return _model_class(spec)(config)


def new_config(task: str, backbone: str | None = None, **head_kwargs: Any) -> ModelConfig:
    """The config of an untrained ``task`` model on ``backbone`` (the task's default when ``None``).

    Example:
        >>> new_config("expression", "resnet18").labels[:2]
        ('angry', 'disgust')
    """
    spec = _plugins.registry().get("task", task)
    backbone = backbone or spec.default_backbone
    check_backbone(backbone)
    unknown = set(head_kwargs) - set(spec.head)
    if unknown:
        raise FacezooError(
            f"task {task!r} has no head arguments {sorted(unknown)}; valid: {sorted(spec.head) or 'none'}"
        )
    return ModelConfig(
        task=task,
        backbone=backbone,
        head={**spec.head, **head_kwargs},
        labels=tuple(spec.labels),
        preprocess=spec.preprocess,
        trained=False,
    )


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


def _load_source(source: str, revision: str | None):
    if source.startswith(HF_PREFIX):
        repo_id, pinned = split_revision(source[len(HF_PREFIX) :])
        return load_model_dir(download(repo_id, revision or pinned))
    return load_model_dir(Path(source))


def load(
    task: str,
    backbone: str | None = None,
    *,
    pretrained: bool = True,
    revision: str | None = None,
    device: str | None = None,
    **head_kwargs: Any,
):
    """Load a face model.

    ``task`` is a task name (``"beauty"``), a model id (``"beauty/efficientnet_lite0.scut5500"``),
    ``"hf-hub:org/name[@revision]"`` or a local model directory. ``backbone`` is any timm model
    name. ``pretrained=True`` never silently gives random weights: it raises if no weights are
    registered; ``pretrained=False`` builds an untrained model (``model.config.trained`` is False).

    Example:
        >>> model = facezoo.load("age-gender", "resnet18", pretrained=False)
        >>> model.config.model_id
        'age-gender/resnet18'
    """
    registry = _plugins.registry()
    if task.startswith(HF_PREFIX) or Path(task, "config.json").is_file():
        model = _load_source(task, revision)
    elif "/" in task:
        if task not in registry.names("model"):
            raise unknown_name("model", task, registry.names("model"), hint="See facezoo.list_models()")
        model = _load_source(registry.get("model", task).source, revision)
    else:
        registry.get("task", task, hint="See facezoo.list_tasks()")
        if pretrained:
            spec = _pretrained_for(task, backbone)
            model = _load_source(spec.source, revision)
        else:
            model = build_model(new_config(task, backbone, **head_kwargs))
            head_kwargs = {}
    if head_kwargs:
        raise FacezooError(
            f"head arguments {sorted(head_kwargs)} cannot change a pretrained model's head; "
            "pass pretrained=False to build a new head."
        )
    import torch

    model = model.to(device=device, memory_format=torch.channels_last) if device else model.to(memory_format=torch.channels_last)
    return model


def list_tasks() -> list[str]:
    """Names of the registered tasks.

    Example:
        >>> facezoo.list_tasks()
        ['age-gender', 'beauty', 'expression', 'identity', 'keypoints']
    """
    return _plugins.registry().names("task")


def _available_offline(spec: PretrainedSpec) -> bool:
    if not spec.source.startswith(HF_PREFIX):
        return (Path(spec.source) / "model.safetensors").exists()
    from huggingface_hub import try_to_load_from_cache

    repo_id, revision = split_revision(spec.source[len(HF_PREFIX) :])
    return isinstance(try_to_load_from_cache(repo_id, "model.safetensors", revision=revision), str)


def list_models(filter: str = "", task: str | None = None, pretrained: bool = False) -> list[str]:
    """Ids of the registered models, ``task/backbone.tag``; ``filter`` is a wildcard or substring.

    ``pretrained=True`` keeps only models whose weights load right now without the network
    (shipped in a package or already in the Hugging Face cache).

    Example:
        >>> facezoo.list_models("beauty/*")  # doctest: +SKIP
        ['beauty/efficientnet_lite0.scut5500']
    """
    registry = _plugins.registry()
    ids = registry.names("model", filter)
    if task is not None:
        registry.get("task", task)
        ids = [i for i in ids if parse_model_id(i)[0] == task]
    if pretrained:
        ids = [i for i in ids if _available_offline(registry.get("model", i))]
    return ids

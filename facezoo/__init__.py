"""facezoo: a plugin-based model zoo for face analysis.

Example:
    >>> import facezoo
    >>> model = facezoo.load("beauty")                     # doctest: +SKIP
    >>> model.predict("photo.jpg")                         # doctest: +SKIP
    [BeautyResult(score=3.42, ...)]

``import facezoo`` is cheap: torch and timm load on first use of a model.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._lazy import lazy_getattr  # noqa: E402
from ._plugins import PluginInfo, list_plugins, register_plugin, unregister_plugin  # noqa: E402
from .config import ModelConfig, Preprocess  # noqa: E402
from .errors import (  # noqa: E402
    ConfigError,
    DatasetError,
    FacezooError,
    HubError,
    ImageTooLargeError,
    InputError,
    MissingExtraError,
    NotAnImageError,
    PluginError,
    UnknownNameError,
    WeightsError,
)
from .hookspecs import hookimpl  # noqa: E402
from .registry import (  # noqa: E402
    BackboneSpec,
    CommandSpec,
    DatasetSpec,
    DetectorSpec,
    PretrainedSpec,
    TaskSpec,
    TeacherSpec,
)
from .results import Face, FaceResult  # noqa: E402

_LAZY = {
    "load": "._factory",
    "list_tasks": "._factory",
    "list_models": "._factory",
    "new_config": "._factory",
    "FaceModel": "._model",
    "FaceCrop": "._preprocess",
    "FaceTransform": "._preprocess",
    "push_directory": "._hub",
    "train": ".training",
    "export": ".training",
    "analyze": "._analyze",
    "annotate": "._analyze",
    "FaceAnalysis": "._analyze",
    "evaluate": "._evaluate",
    "batch": "._batch",
    "BatchSummary": "._batch",
    "BatchWorker": "._batch",
    "EvalReport": "._evaluate",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BackboneSpec", "CommandSpec", "ConfigError", "DatasetError", "DatasetSpec", "TeacherSpec", "DetectorSpec", "Face", "FaceCrop", "FaceModel", "FaceResult", "FaceTransform",
    "FacezooError", "HubError", "ImageTooLargeError", "InputError", "NotAnImageError", "MissingExtraError", "ModelConfig", "PluginError", "PluginInfo",
    "Preprocess", "PretrainedSpec", "TaskSpec", "UnknownNameError", "WeightsError", "__version__", "hookimpl",
    "list_models", "list_plugins", "list_tasks", "load", "new_config", "push_directory", "export",
    "register_plugin", "unregister_plugin", "train", "evaluate", "EvalReport", "analyze", "annotate", "FaceAnalysis",
    "batch", "BatchSummary", "BatchWorker",
]

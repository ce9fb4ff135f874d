"""facezoo: a plugin-based model zoo for face analysis.

Example:
    >>> import facezoo
    >>> model = facezoo.load("beauty")                     # doctest: +SKIP
    >>> model.predict("photo.jpg")                         # doctest: +SKIP
    [BeautyResult(score=3.42, ...)]

``import facezoo`` is cheap: torch and timm load on first use of a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_getattr
from ._plugins import PluginInfo, list_plugins, register_plugin, unregister_plugin
from ._version import __version__
from .config import ModelConfig, Preprocess
from .errors import (
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
from .hookspecs import hookimpl
from .registry import BackboneSpec, CommandSpec, DatasetSpec, DetectorSpec, PretrainedSpec, TaskSpec, TeacherSpec
from .results import Face, FaceResult

if TYPE_CHECKING:  # what _LAZY imports on first use, spelt out for type checkers and IDEs
    from ._analyze import FaceAnalysis, analyze, annotate
    from ._batch import BatchSummary, BatchWorker, batch
    from ._evaluate import EvalReport, evaluate
    from ._factory import list_models, list_tasks, load, new_config
    from ._hub import push_directory
    from ._model import FaceModel
    from ._preprocess import FaceCrop, FaceTransform
    from .index import FaceIndex, IndexMatch
    from .training import export, train

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
    "FaceIndex": ".index",
    "IndexMatch": ".index",
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
    "batch", "BatchSummary", "BatchWorker", "FaceIndex", "IndexMatch",
]

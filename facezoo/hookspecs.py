"""The facezoo plugin contract.

A plugin is a module (or object) with functions named like the hooks below, marked with
``@facezoo.hookimpl``, exposed through the ``facezoo`` entry-point group of its distribution::

    # pyproject.toml of your distribution
    [project.entry-points.facezoo]
    glasses = "facezoo_glasses"

Every hook receives a ``register`` callback and calls it with each thing it adds: one spec, or
an iterable of specs. The five built-in tasks use exactly this path. Keep the plugin module
light: import torch and timm inside the factories, not at module level, or give a factory as a
``"package.module:function"`` string, imported on first use; so ``import facezoo`` stays fast and
one broken plugin cannot break the others. docs/plugins.md builds a complete plugin step by step.

Since facezoo 0.1.0.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from .registry import (
    BackboneSpec,
    CommandSpec,
    DatasetSpec,
    DetectorSpec,
    PretrainedSpec,
    TaskSpec,
    TeacherSpec,
)

hookspec = pluggy.HookspecMarker("facezoo")
hookimpl = pluggy.HookimplMarker("facezoo")


@hookspec
def facezoo_register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Add tasks: call ``register(TaskSpec(...))`` once per task.

    A task name may be registered by one plugin only; a second registration is an error that
    names both plugins.

    Example:
        >>> @hookimpl
        ... def facezoo_register_tasks(register):
        ...     register(TaskSpec(name="glasses", summary="glasses or not",
        ...                       build_head=build_head, build_loss=build_loss,
        ...                       postprocess=postprocess, labels=("no", "yes")))
    """


@hookspec
def facezoo_register_models(register: Callable[[PretrainedSpec], None]) -> None:
    """Add pretrained models: call ``register(PretrainedSpec(...))`` once per model.

    ``model_id`` is ``task/backbone.tag``; ``source`` is a local Hub-layout directory (weights
    shipped in your package) or ``hf-hub:org/name@revision``. Mark one model per task
    ``default=True`` to make it what ``facezoo.load(task)`` returns; two defaults for one task are
    an error naming both models and their plugins.

    Example:
        >>> @hookimpl
        ... def facezoo_register_models(register):
        ...     register(PretrainedSpec("glasses/resnet18.v1", source="hf-hub:me/glasses@v1",
        ...                             default=True))
    """


@hookspec
def facezoo_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Add dataset adapters used by ``facezoo.train`` and ``facezoo.evaluate``.

    ``DatasetSpec.build(data_root, split, **options)`` returns a ``facezoo.data.FaceDataset``;
    ``data_root`` is the folder holding all datasets (``FACEZOO_DATA``, else ``../shared/data``, by default).

    Example:
        >>> @hookimpl
        ... def facezoo_register_datasets(register):
        ...     register(DatasetSpec("my-glasses", task="glasses", build=build_dataset,
        ...                          splits=("train", "test")))
    """


@hookspec
def facezoo_register_detectors(register: Callable[[DetectorSpec], None]) -> None:
    """Add face detectors: ``register(DetectorSpec(name, build))``.

    A model's ``config.json`` names its detector in ``preprocess.detector``; the detector must
    return boxes, scores and the five landmarks (eyes, nose tip, mouth corners).

    Example:
        >>> @hookimpl
        ... def facezoo_register_detectors(register):
        ...     register(DetectorSpec("my-detector", build=MyDetector))
    """


@hookspec
def facezoo_register_teachers(register: Callable[[TeacherSpec], None]) -> None:
    """Add teachers: stronger models whose outputs ``facezoo train --teacher NAME`` learns from.

    Example:
        >>> @hookimpl
        ... def facezoo_register_teachers(register):
        ...     register(TeacherSpec("my-teacher", task="glasses", build="my_plugin.teacher:build",
        ...                          license="MIT; trained on ..."))
    """


@hookspec
def facezoo_register_commands(register: Callable[[CommandSpec], None]) -> None:
    """Add ``facezoo`` subcommands: ``register(CommandSpec(name, help, add_arguments, run))``.

    A name already used by facezoo's own commands or another plugin is an error naming both.

    Example:
        >>> @hookimpl
        ... def facezoo_register_commands(register):
        ...     register(CommandSpec("glasses-report", help="count glasses in a folder",
        ...                          add_arguments=add_arguments, run=run))
    """


@hookspec
def facezoo_register_backbones(register: Callable[[BackboneSpec], None]) -> None:
    """Add backbones that are not timm models: ``register(BackboneSpec(name, build))``.

    The name then works wherever a timm name does (``facezoo.load(task, name,
    pretrained=False)``, ``facezoo train --backbone``, saved models, ONNX). A name registered
    twice, or also a timm model's, is an error naming the plugin. Import torch inside ``build``.

    Example:
        >>> @hookimpl
        ... def facezoo_register_backbones(register):
        ...     register(BackboneSpec("my_net", build=build_my_net, summary="my architecture"))

    Since facezoo 0.1.0.
    """

"""``facezoo.train`` and ``facezoo.export``: train a task model on registered data, ship it measured.

A run frames every face as ``predict`` does (the model's detector and crop, from its config),
learns from the dataset's labels and, with ``teacher=``, from a stronger offline model's labels
on every face of ``extra_data`` too (:mod:`facezoo.training.data`). It is resumable: the same
call continues an interrupted run (:mod:`facezoo.training.run`). The loop is
:mod:`facezoo.training.loop`; plugins can use these pieces for trainers of their own.

Example:
    >>> facezoo.train("beauty", "scut-fbp5500", output_dir="runs/beauty")   # doctest: +SKIP
    PosixPath('runs/beauty')
    >>> facezoo.export("runs/beauty", "my-beauty-model")                     # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr
from ..errors import needs_torch

if TYPE_CHECKING:  # what _LAZY imports on first use, for type checkers and IDEs ("X as X": re-exported)
    from .data import Source as Source
    from .data import training_data as training_data
    from .run import RunDirectory as RunDirectory
    from .settings import TrainSettings as TrainSettings
    from .settings import command_line as command_line
    from .trainer import check_settings as check_settings
    from .trainer import export as export
    from .trainer import train as train

_LAZY = {
    "train": ".trainer",
    "export": ".trainer",
    "check_settings": ".trainer",
    "TrainSettings": ".settings",
    "command_line": ".settings",
    "RunDirectory": ".run",
    "Source": ".data",
    "training_data": ".data",
}
__all__ = sorted(_LAZY)


# The training machinery (torch) is imported only when used: the CLI builds its parser from
# facezoo.training.settings without it, and the lean install (no torch) gets an error naming the extra.
_import_lazily = lazy_getattr(__name__, _LAZY)


def __getattr__(name: str):
    with needs_torch(f"facezoo.training.{name} (training and exporting)", extra="train"):
        return _import_lazily(name)

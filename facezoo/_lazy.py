"""Lazy package attributes (PEP 562): a name is imported from its submodule on first use, so
``import facezoo`` (and the CLI's start-up) pays only for what a program touches."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``names[name]`` (a submodule, relative
    to ``package``) on first use and keeps the value in the module.

    Example:
        >>> __getattr__ = lazy_getattr(__name__, {"create_app": ".app"})   # doctest: +SKIP
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            value = getattr(importlib.import_module(names[name], package), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__

"""``facezoo serve``: the models behind a versioned JSON API and a web page.

Needs the ``serve`` extra (``pip install 'facezoo[serve]'``: FastAPI, uvicorn, python-multipart);
``import facezoo.serve`` itself imports none of them. See ``docs/serve.md``.

Example:
    >>> from facezoo.serve import ServeSettings, create_app
    >>> app = create_app(["beauty"], settings=ServeSettings(workers=2))   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from .settings import TOKEN_VARIABLE, ServeSettings

_LAZY = {"create_app": ".app", "serve": ".app"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'facezoo.serve' has no attribute {name!r}")


__all__ = ["TOKEN_VARIABLE", "ServeSettings", "create_app", "serve"]

"""``facezoo serve``: the models behind a versioned JSON API and a web page.

Needs the ``serve`` extra (``pip install 'facezoo[serve]'``: FastAPI, uvicorn, python-multipart);
``import facezoo.serve`` itself imports none of them. See ``docs/serve.md``.

Example:
    >>> from facezoo.serve import ServeSettings, create_app
    >>> app = create_app(["beauty"], settings=ServeSettings(workers=2))   # doctest: +SKIP
"""

from __future__ import annotations

from .._lazy import lazy_getattr
from .settings import TOKEN_VARIABLE, ServeSettings

_LAZY = {"create_app": ".app", "serve": ".app"}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = ["TOKEN_VARIABLE", "ServeSettings", "create_app", "serve"]

"""facezoo's cache folder, in a leaf module: the factory (ONNX files), backbones (ImageNet
weights) and data (detections, arrays, teacher labels) all cache there, and this imports none of them.

Example:
    >>> import os
    >>> os.environ["FACEZOO_CACHE"] = "/tmp/fz"
    >>> cache_dir("onnx")
    PosixPath('/tmp/fz/onnx')
    >>> del os.environ["FACEZOO_CACHE"]
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(kind: str) -> Path:
    """Where facezoo caches ``kind`` (detections, arrays, teachers, ...): ``$FACEZOO_CACHE/kind``,
    by default ``~/.cache/facezoo/kind`` (``$XDG_CACHE_HOME`` respected). Never inside the repository."""
    root = os.environ.get("FACEZOO_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "facezoo")
    return Path(root) / kind

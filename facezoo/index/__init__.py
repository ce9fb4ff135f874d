"""Face indexes: search a photo collection for a face (docs/index.md).

:class:`FaceIndex` is the embedded index (a directory; FAISS, the ``index`` extra); building one
from a folder of photos goes through ``facezoo batch`` (:mod:`facezoo.index.build`).

Example:
    >>> index = facezoo.FaceIndex.create("people.idx", model="identity")   # doctest: +SKIP
    >>> index.add_photos(["alice.jpg"])                                     # doctest: +SKIP
    >>> index.search_photo("query.jpg", top=5, threshold=0.9)               # doctest: +SKIP
    >>> build_index("photos/", "photos.idx", engine="ray")                  # doctest: +SKIP
"""

from __future__ import annotations

from .base import FaceIndexBase, IndexMatch
from .build import build_index
from .store import FaceIndex

__all__ = ["FaceIndex", "FaceIndexBase", "IndexMatch", "build_index"]

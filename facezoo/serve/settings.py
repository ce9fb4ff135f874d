"""The limits and switches of a facezoo server (no web framework is imported here)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..errors import FacezooError

#: Environment variable read for the bearer token when none is given on the command line.
TOKEN_VARIABLE = "FACEZOO_SERVE_TOKEN"


@dataclass(frozen=True)
class ServeSettings:
    """How much a server accepts and who may call it.

    ``workers`` inference threads run requests; up to ``queue`` more wait for one, and a request
    beyond that is answered 503 at once (with Retry-After). Request bodies are received before
    that, at most ``receiving`` at once (503 past it), each within ``timeout`` (else 408), so slow
    uploads never hold an inference slot. A request whose photo reading and
    inference take longer than ``timeout`` seconds is answered 504. A request body over
    ``max_upload_bytes`` is answered 413, and so is a photo of more than ``max_pixels`` pixels
    (checked from its header, before decoding). A JPEG longer than ``decode_side`` pixels is
    decoded smaller by the JPEG decoder (1/2, 1/4 or 1/8, still at least ``decode_side`` long; the
    detector looks at 960 px at most), and the answer's coordinates are the photo's own: a
    36-megapixel upload then takes a ninth of the memory. ``None`` decodes every photo whole. With ``token``, every ``/v1`` call needs
    ``Authorization: Bearer <token>`` (else 401). ``cors_origins`` are the web origins allowed to
    call the API from a browser (none by default). ``gallery`` keeps enrolled people across
    restarts: a directory of face indexes (one per model), or a ``.json`` file (in memory only when ``None``). A model's gallery holds at most
    ``gallery_people`` people of at most ``gallery_photos`` embeddings each; more is answered 409.
    ``index`` is a face index directory (``facezoo index build``) that ``/v1/search`` searches.
    A connection whose request line and headers have not all arrived ``header_timeout`` seconds
    after it opened (or after its last answer) is closed, so slow or idle clients cannot hold
    sockets; past ``max_connections`` open connections uvicorn answers 503.

    Example:
        >>> ServeSettings(workers=2, queue=4).capacity
        6
    """

    workers: int = 1
    queue: int = 4
    receiving: int = 16
    timeout: float = 30.0
    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = 40_000_000
    decode_side: int | None = 2048
    token: str | None = None
    cors_origins: tuple[str, ...] = ()
    gallery: Path | None = None
    gallery_people: int = 1000
    gallery_photos: int = 10
    index: Path | None = None
    header_timeout: float = 10.0
    max_connections: int = 1000

    def __post_init__(self) -> None:
        def whole(name: str, low: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise FacezooError(f"serve setting {name} must be a whole number of at least {low}, got {value!r}")

        whole("workers", 1)
        whole("queue", 0)
        whole("receiving", 1)
        whole("max_upload_bytes", 1024)
        whole("max_pixels", 256)
        if self.decode_side is not None:
            whole("decode_side", 256)
        whole("gallery_people", 1)
        whole("gallery_photos", 1)
        whole("max_connections", 1)
        for name in ("timeout", "header_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise FacezooError(f"serve setting {name} must be a positive number of seconds, got {value!r}")
        if Image.MAX_IMAGE_PIXELS is not None and self.max_pixels > Image.MAX_IMAGE_PIXELS:
            raise FacezooError(
                f"serve setting max_pixels={self.max_pixels} is above Pillow's decompression-bomb limit "
                f"PIL.Image.MAX_IMAGE_PIXELS={Image.MAX_IMAGE_PIXELS}; lower it, or raise that limit first"
            )
        if self.token is not None and (not isinstance(self.token, str) or len(self.token) < 8 or self.token != self.token.strip()):
            raise FacezooError("the serve token must be a string of at least 8 characters without surrounding spaces")
        if isinstance(self.cors_origins, str):
            object.__setattr__(self, "cors_origins", (self.cors_origins,))
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))
        if self.gallery is not None:
            object.__setattr__(self, "gallery", Path(self.gallery))
        if self.index is not None:
            object.__setattr__(self, "index", Path(self.index))

    @property
    def capacity(self) -> int:
        """Requests in the server at once: running plus waiting."""
        return self.workers + self.queue

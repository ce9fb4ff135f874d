"""Helpers to test pages that run facezoo in the browser: the system's Chromium (never a
downloaded one), a loopback static server that logs every request, ``facezoo serve`` in a
thread, and a Y4M video for Chromium's fake webcam.

Example:
    >>> from facezoo.testing.web import static_site
    >>> with static_site("site") as (url, requests):   # doctest: +SKIP
    ...     page.goto(url)                              # a playwright page
    >>> [r for r in requests if r.method != "GET"]      # doctest: +SKIP
    []
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

__all__ = ["CHROMIUM", "LoggedRequest", "find_chromium", "serving", "static_site", "write_y4m"]

CHROMIUM = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """``$FACEZOO_CHROMIUM``, else the first Chromium on the PATH."""
    return os.environ.get("FACEZOO_CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM)), None)


@dataclass(frozen=True)
class LoggedRequest:
    """One request a test server answered: its method, path and body size."""

    method: str
    path: str
    body_bytes: int


@contextmanager
def static_site(directory: str | Path) -> Iterator[tuple[str, list[LoggedRequest]]]:
    """``directory`` served as plain static files on a free 127.0.0.1 port, as ``python -m
    http.server`` does (no cross-origin isolation headers); yields its URL and the live list of
    requests it answered."""
    requests: list[LoggedRequest] = []

    class Handler(SimpleHTTPRequestHandler):
        extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript", ".wasm": "application/wasm"}

        def log_message(self, *args) -> None:  # quiet
            pass

        def _log(self) -> None:
            requests.append(LoggedRequest(self.command, self.path, int(self.headers.get("Content-Length") or 0)))

        def do_GET(self) -> None:
            self._log()
            super().do_GET()

        def do_POST(self) -> None:
            self._log()
            self.send_error(405)

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requests
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serving(app) -> Iterator[str]:
    """An ASGI ``app`` (``facezoo.serve.create_app()``) served by uvicorn on a free loopback port, in a thread; yields its URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError("the server did not start within 30 s")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def write_y4m(path: str | Path, frames: Sequence[np.ndarray], fps: int = 30) -> Path:
    """RGB ``H×W×3`` uint8 frames (even sizes) as a Y4M video (4:2:0, BT.601 limited range), the
    format Chromium's ``--use-file-for-fake-video-capture`` plays as a webcam."""
    height, width = frames[0].shape[:2]
    if height % 2 or width % 2 or any(f.shape != frames[0].shape for f in frames):
        raise ValueError("Y4M frames need one even width and height")
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for frame in frames:
            r, g, b = (frame[:, :, c].astype(np.float32) for c in range(3))
            y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
            u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
            v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
            sub = lambda plane: plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))  # noqa: E731
            out.write(b"FRAME\n")
            for plane in (y, sub(u), sub(v)):
                out.write(np.clip(np.rint(plane), 0, 255).astype(np.uint8).tobytes())
    return Path(path)

"""Photos out of a request, in memory only: multipart uploads or base64 strings in JSON.

The body is read under the size limit (413 as soon as it is passed) and parsed from memory;
nothing is written to disk. Decoding the photos is left to the worker threads
(:func:`facezoo._images.decode_image`), so the event loop never decodes pixels.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request


class RequestError(Exception):
    """A request the server cannot take, with the HTTP status to answer."""

    def __init__(self, status: int, message: str, error: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.error, self.headers = status, error, headers


@dataclass(frozen=True)
class Photo:
    """The encoded bytes of one photo and how error messages call it."""

    label: str
    data: bytes


class _InMemoryParser(MultiPartParser):
    # Starlette spools file parts over 1 MB to a temporary file on disk; uploads must never touch
    # the disk, and the body was read whole under the size limit already, so keep parts in memory.
    spool_max_size = 2**62


def _usage(fields: Sequence[str], many: bool) -> str:
    if many:
        return "multipart/form-data with one or more file fields 'image' (curl -F image=@a.jpg -F image=@b.jpg), or JSON {\"images\": [\"<base64>\", ...]}"
    return (
        "multipart/form-data with the file field" + ("s " if len(fields) > 1 else " ") + ", ".join(repr(f) for f in fields)
        + " (curl " + " ".join(f"-F {f}=@photo{i or ''}.jpg" for i, f in enumerate(fields)) + "), or JSON {"
        + ", ".join(f'"{f}": "<base64>"' for f in fields) + "}"
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the request body of {int(declared)} bytes is over the server's limit of {limit} bytes; send smaller photos", "PayloadTooLarge")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the request body is over the server's limit of {limit} bytes; send smaller photos", "PayloadTooLarge")
        chunks.append(chunk)
    return b"".join(chunks)


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


def _clip(text: str, size: int = 80) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


async def _from_multipart(request: Request, body: bytes, fields: Sequence[str], many: bool) -> list[Photo]:
    parser = _InMemoryParser(request.headers, _once(body), max_files=64, max_fields=64, max_part_size=64 * 1024)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise RequestError(400, f"the multipart body cannot be parsed ({exc}); send {_usage(fields, many)}", "BadRequest") from None
    try:
        photos = []
        for field in fields:
            parts = form.getlist(field)
            if any(not isinstance(p, UploadFile) for p in parts):
                raise RequestError(400, f"field {field!r} is text, not a file; send {_usage(fields, many)}", "BadRequest")
            if not parts or (len(parts) > 1 and not many):
                got = "no" if not parts else f"{len(parts)} files in"
                raise RequestError(400, f"got {got} field {field!r}; send {_usage(fields, many)}", "BadRequest")
            for number, part in enumerate(parts, 1):
                where = f"upload {field!r}" + (f" #{number}" if many else "")
                part.file.seek(0)
                photos.append(Photo(f"{where} ({_clip(part.filename)!r})" if part.filename else where, part.file.read()))
        return photos
    finally:
        await form.close()


def _from_base64(value: object, label: str) -> bytes:
    if not isinstance(value, str):
        raise RequestError(400, f"{label} must be a base64 string (optionally a data: URL), got {type(value).__name__}", "BadRequest")
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f"{label} is not valid base64", "BadRequest") from None


#: The longest number a JSON body may hold: a photo request has none, and Python's int() of
#: thousands of digits is slow (and refused past 4300).
MAX_NUMBER_DIGITS = 100


def _number(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if len(text) > MAX_NUMBER_DIGITS:
            raise RequestError(400, f"the JSON body holds a number of {len(text)} characters, over the limit of {MAX_NUMBER_DIGITS}", "BadRequest")
        return kind(text)

    return parse


def _from_json(body: bytes, fields: Sequence[str], many: bool) -> list[Photo]:
    try:
        data = json.loads(body, parse_int=_number(int), parse_float=_number(float))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"the JSON body cannot be parsed ({exc}); send {_usage(fields, many)}", "BadRequest") from None
    except RecursionError:
        raise RequestError(400, f"the JSON body is nested too deeply to parse; send {_usage(fields, many)}", "BadRequest") from None
    if not isinstance(data, dict):
        raise RequestError(400, f"the JSON body must be an object; send {_usage(fields, many)}", "BadRequest")
    if many:
        values = data.get("images")
        if not isinstance(values, list) or not values:
            raise RequestError(400, f"the JSON body needs a non-empty list 'images'; send {_usage(fields, many)}", "BadRequest")
        return [Photo(f"JSON images[{i}]", _from_base64(v, f"JSON images[{i}]")) for i, v in enumerate(values)]
    missing = [f for f in fields if f not in data]
    if missing:
        raise RequestError(400, f"the JSON body lacks {', '.join(map(repr, missing))}; send {_usage(fields, many)}", "BadRequest")
    return [Photo(f"JSON field {f!r}", _from_base64(data[f], f"JSON field {f!r}")) for f in fields]


async def read_photos(request: Request, limit: int, fields: Sequence[str] = ("image",), *, many: bool = False) -> list[Photo]:
    """The photos of a request: one per name in ``fields`` (in that order), or with ``many`` every
    photo sent as ``image`` (multipart) or ``images`` (JSON)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("multipart/form-data", "application/json"):
        raise RequestError(415, f"unsupported content type {kind or '(none)'!r}; send {_usage(fields, many)}", "UnsupportedMediaType")
    body = await read_body(request, limit)
    if kind == "application/json":
        return _from_json(body, fields, many)
    return await _from_multipart(request, body, fields, many)

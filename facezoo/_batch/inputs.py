"""The images of a batch run: a folder, a manifest (CSV, JSON lines, parquet), one image or a list of paths.

Each image has an id, the key of its rows in the output: its path relative to the folder, the
manifest's ``id`` column (else its path as written there), or the path as given in a list. The
run's order is the ids sorted, so it never depends on the file system's listing order.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError

logger = logging.getLogger(__name__)

MANIFESTS = (".csv", ".jsonl", ".parquet")
#: Manifest columns that may hold the image path, in order of preference.
PATH_COLUMNS = ("path", "file", "image")


def image_extensions() -> set[str]:
    """File extensions Pillow can open (what a folder input takes; other files are skipped)."""
    from PIL import Image

    Image.init()
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def _text_id(name: str) -> str:
    """A file name as text that can be written: bytes that are not UTF-8 (kept by Python as
    surrogates) are spelled ``\\xNN``, e.g. ``caf\\xe9.jpg``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _some(names: list[str]) -> str:
    return ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")


def _folder(folder: Path) -> list[tuple[str, str]]:
    """Every file under ``folder`` with an image extension, links and special files included:
    each gets a row, so a broken link, a FIFO or a device says why it was not analysed
    (:func:`facezoo._images.load_image` opens regular files only, and never blocks on one).
    Hidden files and folders are left out; links to folders are not followed; what cannot be
    listed or is left out is logged."""
    extensions = image_extensions()
    images, skipped, linked, renamed, unlisted = [], [], [], [], []
    for top, folders, files in os.walk(folder, onerror=unlisted.append):
        base = Path(top)
        for name in [f for f in folders if (base / f).is_symlink()]:
            linked.append(_text_id((base / name).relative_to(folder).as_posix()))
        folders[:] = sorted(f for f in folders if not f.startswith(".") and not (base / f).is_symlink())
        for name in files:
            if name.startswith("."):
                continue
            path = base / name
            relative = path.relative_to(folder).as_posix()
            image = _text_id(relative)
            if image != relative:
                renamed.append(image)
            (images if path.suffix.lower() in extensions else skipped).append((image, str(path)))
    if unlisted:
        logger.warning("cannot list %d folder(s) in %s, so their images are left out: %s", len(unlisted), folder, _some([str(e) for e in unlisted]))
    if skipped:
        logger.warning("skipping %d file(s) in %s that are not images by their extension: %s", len(skipped), folder, _some([n for n, _ in skipped]))
    if linked:
        logger.warning("not following %d link(s) to folders in %s: %s", len(linked), folder, _some(linked))
    if renamed:
        logger.warning("%d file name(s) in %s are not UTF-8; their rows spell the odd bytes as \\xNN: %s", len(renamed), folder, _some(renamed))
    return images


def _manifest_rows(manifest: Path) -> list[dict]:
    suffix = manifest.suffix.lower()
    try:
        if suffix == ".csv":
            with open(manifest, newline="", encoding="utf-8-sig") as handle:
                return list(csv.DictReader(handle))
        if suffix == ".jsonl":
            with open(manifest, encoding="utf-8") as handle:
                return [json.loads(line) for line in handle if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise InputError(f"--input {str(manifest)!r}: not a readable {suffix[1:]} manifest ({exc})") from None
    from .parts import _pyarrow

    _pyarrow()
    import pyarrow.parquet as pq

    return pq.read_table(manifest).to_pylist()


def _manifest(manifest: Path) -> list[tuple[str, str]]:
    rows = _manifest_rows(manifest)
    if not rows:
        return []
    found = list(rows[0])
    column = next((c for c in PATH_COLUMNS if c in found), None)
    if column is None:
        raise InputError(f"--input {str(manifest)!r}: a manifest needs a column of image paths named {' or '.join(PATH_COLUMNS)}; it has {found}")
    images = []
    for row in rows:
        written = "" if row.get(column) is None else str(row[column])
        image = str(row["id"]) if row.get("id") not in (None, "") else written
        images.append((image, str(manifest.parent / written) if written else ""))
    return images


def list_images(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[tuple[str, str]]:
    """``(image id, absolute path)`` of every image of ``source``, sorted by id; ids are unique.

    Example:
        >>> list_images(["/photos/b.jpg", "/photos/a.jpg"])
        [('/photos/a.jpg', '/photos/a.jpg'), ('/photos/b.jpg', '/photos/b.jpg')]
    """
    if isinstance(source, (list, tuple)):
        images = [(_text_id(os.fspath(p)), str(Path(p).absolute())) for p in source]
    else:
        path = Path(source).absolute()
        if path.is_dir():
            images = _folder(path)
        elif not path.exists():
            raise InputError(f"--input {str(path)!r}: no such folder or file")
        elif path.suffix.lower() in MANIFESTS:
            images = _manifest(path)
        elif path.suffix.lower() in image_extensions():
            images = [(_text_id(path.name), str(path))]
        else:
            raise InputError(f"--input {str(path)!r}: give a folder of images or a manifest ({', '.join(MANIFESTS)}) with a path column")
    if not images:
        raise InputError(f"--input {os.fspath(source) if not isinstance(source, (list, tuple)) else 'list'}: no images found")
    twice = [image for image, count in Counter(image for image, _ in images).items() if count > 1]
    if twice:
        raise InputError(f"image ids occur more than once ({', '.join(sorted(twice)[:5])}); every image needs its own id (a manifest's id column)")
    return sorted(images)


def fingerprint(images: Sequence[tuple[str, str]]) -> str:
    """A short hash of the input list (ids and paths), stored with the run's settings."""
    digest = hashlib.sha256()
    for image, path in images:
        digest.update(f"{image}\0{path}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]

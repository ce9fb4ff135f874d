"""Turn whatever the user passes (paths, PIL images, arrays, tensors) into RGB PIL images.

Every failure becomes an :class:`~facezoo.errors.InputError` naming the input (and its index in a
batch) and the fix. EXIF orientation is applied and colour modes are converted the same way
everywhere: 16-bit images are scaled (not clipped) to 8 bits, alpha is dropped, palette, CMYK and
grayscale images become RGB.
"""

from __future__ import annotations

import errno
import io
import math
import os
import stat
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ImageTooLargeError, InputError, NotAnImageError

MIN_SIDE = 16


def _describe(index: int | None, source: Any) -> str:
    where = f"input {index}" if index is not None else "input"
    if isinstance(source, (str, os.PathLike)):
        return f"{where} ({os.fspath(source)!r})"
    return f"{where} ({type(source).__name__})"


#: What a path that is not a regular file is, by the ``stat`` test that recognises it.
_SPECIAL = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _from_path(path: Path, name: str) -> Image.Image:
    """Open ``path`` without blocking and decode it only if it is a regular file: a FIFO or a
    device (``/dev/zero``) would be read forever. The file is opened first and checked after
    (``fstat``), so it cannot be swapped for another kind in between."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        if path.is_symlink():
            raise InputError(f"{name}: a broken symbolic link (to {os.readlink(path)!r}, which does not exist). Fix or remove the link.") from None
        raise InputError(f"{name}: no such file. Check the path.") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied; facezoo cannot read it (check the file's permissions and its folder's).") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{name}: a symbolic link loop (following its links never reaches a file). Fix or remove the link.") from None
        raise InputError(f"{name}: cannot be opened ({exc.strerror}).") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise InputError(f"{name}: is a directory, not an image file. Pass the image files inside it.")
        kind = next((what for test, what in _SPECIAL if test(mode)), "a special file")
        raise InputError(f"{name}: is {kind}, not an image file; facezoo reads only regular files, so it was not read.")
    with os.fdopen(fd, "rb") as handle:
        return _open(handle, name)


def _open(file: Any, name: str, max_pixels: int | None = None, max_side: int | None = None) -> Image.Image:
    """Decode an image file (a path or a binary file object); more than ``max_pixels`` is refused
    from the header, before any pixel is decoded. A JPEG longer than ``max_side`` is decoded at
    1/2, 1/4 or 1/8 of its size by the decoder itself (the smallest that stays at least
    ``max_side`` long); ``info["photo_size"]`` then holds the photo's own size."""
    try:
        with Image.open(file) as img:
            if max_pixels is not None and img.width * img.height > max_pixels:
                raise ImageTooLargeError(
                    f"{name}: {img.width}×{img.height} px ({img.width * img.height / 1e6:.1f} megapixels) is over the limit of "
                    f"{max_pixels / 1e6:.1f} megapixels (a guard against decompression bombs). Downscale it first."
                )
            _warn_if_animated(img, name)
            if max_side is not None and img.format == "JPEG" and max(img.size) > max_side:
                rotated = img.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)
                photo_size = img.size[::-1] if rotated else img.size
                ratio = max_side / max(img.size)
                img.draft(img.mode, (math.ceil(img.width * ratio), math.ceil(img.height * ratio)))
                img.info["photo_size"] = photo_size
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # no copy: a 36-megapixel photo is 108 MB once decoded
            return img
    except InputError:
        raise
    except UnidentifiedImageError:
        raise NotAnImageError(f"{name}: not an image Pillow can read (JPEG, PNG, WebP, BMP, TIFF, ...).") from None
    except Image.DecompressionBombError as exc:
        fix = "Downscale it first." if max_pixels is not None else "If you trust the file, raise PIL.Image.MAX_IMAGE_PIXELS or downscale it first."
        raise ImageTooLargeError(f"{name}: {exc}. {fix}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name}: the image is corrupt or truncated ({exc}). Re-export or re-download it.") from None


def _warn_if_animated(img: Image.Image, name: str) -> None:
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        warnings.warn(f"{name}: an animated image of {frames} frames; facezoo uses the first frame only", stacklevel=4)


def _bit_depth_peak(arr: np.ndarray, name: str) -> float:
    """The full-scale value of 16-bit pixel data: 10-, 12- and 14-bit data stored in 16 bits is
    scaled from its own range (else it comes out nearly black), with a warning saying so."""
    top = float(arr.max())
    for bits in (10, 12, 14):
        if 255 < top <= 2**bits - 1:
            warnings.warn(
                f"{name}: 16-bit image whose values stay below {2**bits} — treated as {bits}-bit data and scaled from "
                f"0–{2**bits - 1}. Convert it to 8 bits yourself if that is wrong.",
                stacklevel=5,
            )
            return float(2**bits - 1)
    return 65535.0


def _to_rgb(img: Image.Image, name: str) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = _bit_depth_peak(arr, name) if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        if img.mode == "F" and arr.max() <= 1.0:
            peak = 1.0
        img = Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise InputError(f"{name}: cannot convert colour mode {img.mode!r} to RGB ({exc}).") from None


def _from_array(arr: np.ndarray, name: str) -> Image.Image:
    if arr.dtype != np.uint8:
        raise InputError(
            f"{name}: numpy array of dtype {arr.dtype}; facezoo expects uint8 RGB in height×width×channels "
            "order. Convert with (array * 255).round().astype(np.uint8) if it holds floats in [0, 1]."
        )
    if arr.ndim == 2:
        return Image.fromarray(arr, mode="L").convert("RGB")
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise InputError(
            f"{name}: numpy array of shape {arr.shape}; expected height×width×3 RGB (or ×1, ×4, or 2-D gray). "
            "If it is channels-first, use array.transpose(1, 2, 0)."
        )
    if arr.shape[2] == 1:
        return Image.fromarray(arr[:, :, 0], mode="L").convert("RGB")
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")


def _tensor_to_array(tensor: Any, name: str) -> np.ndarray:
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3):
        raise InputError(
            f"{name}: tensor of shape {tuple(tensor.shape)}; expected channels×height×width with 1 or 3 "
            "channels (a 4-D batch is split into images). For height×width×channels use tensor.permute(2, 0, 1)."
        )
    import torch

    if tensor.is_meta or tensor.layout != torch.strided:
        raise InputError(
            f"{name}: a {'meta' if tensor.is_meta else str(tensor.layout).replace('torch.', '')} tensor holds no pixel values "
            "facezoo can read; pass a dense tensor with data (tensor.to_dense(), or a real image)."
        )
    t = tensor.detach().cpu()
    if t.dtype.is_floating_point:
        if not bool(torch.isfinite(t).all()):
            raise InputError(f"{name}: float tensor with values that are not finite (NaN or inf); pass RGB in [0, 1].")
        lo, hi = float(t.min()), float(t.max())
        if lo < 0.0 or hi > 1.0:
            raise InputError(
                f"{name}: float tensor with values in [{lo:.3g}, {hi:.3g}]; facezoo expects unnormalised "
                "RGB in [0, 1] (or uint8). Pass the image before normalisation, or use model(tensor) directly."
            )
        t = (t * 255.0).round().to(torch.uint8)
    elif t.dtype != torch.uint8:
        raise InputError(f"{name}: tensor of dtype {t.dtype}; expected uint8 or float in [0, 1].")
    arr = t.permute(1, 2, 0).numpy()
    return arr


def _is_tensor(obj: Any) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "ndim") and hasattr(obj, "dtype")


def load_image(source: Any, index: int | None = None) -> Image.Image:
    """Return ``source`` as an RGB PIL image, or raise :class:`InputError` naming it.

    Example:
        >>> load_image(np.zeros((32, 32, 3), np.uint8)).size
        (32, 32)
    """
    name = _describe(index, source)
    if isinstance(source, (str, os.PathLike)):
        img = _from_path(Path(source), name)
    elif isinstance(source, Image.Image):
        if isinstance(source, ImageFile.ImageFile) and source.tile and source.fp is None:
            # Pillow asserts (a bare AssertionError) on an image opened lazily whose file is closed
            raise InputError(
                f"{name}: the PIL image's file was closed before its pixels were read (image.close(), or the end of a "
                "`with Image.open(...)` block); call image.load() before that, or pass the file path."
            )
        try:
            _warn_if_animated(source, name)
            source.load()
            img = ImageOps.exif_transpose(source)
        except (OSError, SyntaxError) as exc:
            raise InputError(f"{name}: the image is corrupt or truncated ({exc}).") from None
        except (ValueError, AttributeError) as exc:  # a closed image: Pillow has released its pixels
            raise InputError(f"{name}: the PIL image cannot be read ({exc}); was it closed? Pass an open image or the file path.") from None
    elif isinstance(source, np.ndarray):
        img = _from_array(source, name)
    elif _is_tensor(source):
        img = _from_array(_tensor_to_array(source, name), name)
    else:
        raise InputError(
            f"{name}: unsupported type {type(source).__name__}; pass a file path, PIL image, "
            "uint8 numpy array (height×width×3 RGB) or torch tensor (channels×height×width)."
        )
    return _usable(img, name)


def _usable(img: Image.Image, name: str) -> Image.Image:
    img = _to_rgb(img, name)
    if min(img.size) < MIN_SIDE:
        raise InputError(
            f"{name}: image is {img.size[0]}×{img.size[1]} px; facezoo needs at least {MIN_SIDE} px on each side."
        )
    return img


def decode_image(data: bytes, name: str = "image bytes", *, max_pixels: int | None = None) -> Image.Image:
    """Decode an encoded image (JPEG, PNG, ... bytes, e.g. an upload) in memory to RGB, as :func:`load_image` does a file.

    Errors name the input as ``name``: :class:`NotAnImageError` for bytes no decoder knows,
    :class:`ImageTooLargeError` above ``max_pixels`` (checked from the header, before decoding)
    or Pillow's decompression-bomb limit, :class:`InputError` for corrupt, truncated or tiny images.

    Example:
        >>> decode_image(Path("facezoo/testing/photos/portrait.jpg").read_bytes(), "upload 'image'").mode
        'RGB'
    """
    return _usable(_open(io.BytesIO(data), name, max_pixels), name)


def decode_photo(data: bytes, name: str = "image bytes", *, max_pixels: int | None = None, max_side: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """:func:`decode_image`, with a JPEG longer than ``max_side`` decoded smaller by the JPEG
    decoder itself (1/2, 1/4 or 1/8: the smallest still at least ``max_side`` long), so that a
    36-megapixel upload costs a ninth of the memory: the image and the photo's own (width, height).
    Map results back to the photo with :func:`facezoo.results.in_photo`.

    Example:
        >>> image, size = decode_photo(Path("facezoo/testing/photos/group.jpg").read_bytes(), max_side=200)
        >>> image.size, size
        ((240, 164), (480, 328))
    """
    image = _open(io.BytesIO(data), name, max_pixels, max_side)
    photo_size = image.info.pop("photo_size", None) or image.size
    return _usable(image, name), photo_size


def as_batch(inputs: Any) -> tuple[list[Any], bool]:
    """Split ``inputs`` into a list of single images; the flag says whether one image was given.

    A 4-D tensor or array is a batch of images; a list or tuple is a batch.
    """
    if isinstance(inputs, (list, tuple)):
        if len(inputs) == 0:
            raise InputError("got an empty list of images; pass at least one image.")
        return list(inputs), False
    if (_is_tensor(inputs) or isinstance(inputs, np.ndarray)) and inputs.ndim == 4:
        if inputs.shape[0] == 0:
            raise InputError("got an empty batch of images; pass at least one image.")
        return list(inputs), False
    return [inputs], True


def load_images(inputs: Sequence[Any]) -> list[Image.Image]:
    """:func:`load_image` for each element, with its index in error messages."""
    return [load_image(item, index=i) for i, item in enumerate(inputs)]

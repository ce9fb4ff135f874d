"""Bad and unusual input: a facezoo InputError naming the input (and its batch index) and the fix,
never a raw exception from PIL, numpy or torch; colour modes and EXIF orientation handled alike."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

import facezoo
from facezoo._images import decode_image, load_image
from facezoo.testing import FACES, png_claiming

UPRIGHT = Image.open(FACES[0]).convert("RGB")  # 240×300
GRAY = UPRIGHT.convert("L")


@pytest.fixture(scope="module")
def model():
    """Keypoints: 136 outputs mapped to image pixels, so any change of pixels or geometry shows."""
    torch.manual_seed(0)
    return facezoo.load("keypoints", "test_resnet", pretrained=False)


def predict(model, inputs):
    return [r.to_dict() for r in model.predict(inputs, detect=False)]


def _save(tmp_path, name, image, **options):
    path = tmp_path / name
    image.save(path, **options)
    return path


BAD = {
    "missing file": (lambda t: t / "nope.jpg", r"input 0 \('.*nope\.jpg'\): no such file\. Check the path"),
    "directory": (lambda t: t, r"is a directory, not an image file"),
    "broken link": (lambda t: _link(t / "gone.jpg", t / "nowhere.jpg"), r"gone\.jpg'\): a broken symbolic link \(to '.*nowhere\.jpg', which does not exist\)"),
    "link loop": (lambda t: _link(t / "loop.jpg", t / "loop.jpg"), r"loop\.jpg'\): a symbolic link loop"),
    "not an image": (lambda t: _write(t / "notes.jpg", b"these are notes, not a JPEG"), r"notes\.jpg'\): not an image Pillow can read"),
    "corrupt bytes": (lambda t: _write(t / "c.jpg", FACES[0].read_bytes()[:20] + bytes(range(256)) * 8), r"c\.jpg'\): not an image Pillow can read"),
    "truncated JPEG": (lambda t: _write(t / "t.jpg", FACES[0].read_bytes()[:7000]), r"t\.jpg'\): the image is corrupt or truncated .*Re-export"),
    "truncated PIL image": (lambda t: Image.open(_write(t / "t.jpg", FACES[0].read_bytes()[:7000])), r"input 0 \(JpegImageFile\): the image is corrupt or truncated"),
    "tiny file": (lambda t: _save(t, "tiny.png", UPRIGHT.resize((10, 12))), r"tiny\.png'\): image is 10×12 px; facezoo needs at least 16 px"),
    "tiny array": (lambda t: np.zeros((15, 40, 3), np.uint8), r"input 0 \(ndarray\): image is 40×15 px"),
    "float array": (lambda t: np.zeros((32, 32, 3), np.float32), r"dtype float32; facezoo expects uint8 RGB.*astype\(np\.uint8\)"),
    "channels-first array": (lambda t: np.zeros((3, 32, 32), np.uint8), r"shape \(3, 32, 32\); expected height×width×3.*transpose\(1, 2, 0\)"),
    "channels-last tensor": (lambda t: torch.zeros(32, 32, 3), r"tensor of shape \(32, 32, 3\); expected channels×height×width.*permute\(2, 0, 1\)"),
    "int32 tensor": (lambda t: torch.zeros(3, 32, 32, dtype=torch.int32), r"tensor of dtype torch\.int32; expected uint8 or float in \[0, 1\]"),
    "0-255 float tensor": (lambda t: torch.full((3, 32, 32), 200.0), r"float tensor with values in \[200, 200\]; facezoo expects unnormalised RGB in \[0, 1\]"),
    "normalised tensor": (lambda t: torch.randn(3, 32, 32), r"float tensor with values in \[-.*\]; facezoo expects unnormalised"),
    "NaN tensor": (lambda t: torch.full((3, 32, 32), float("nan")), r"float tensor with values that are not finite"),
    "unsupported type": (lambda t: b"\xff\xd8 raw bytes", r"input 0 \(bytes\): unsupported type bytes; pass a file path, PIL image"),
    "empty list": (lambda t: [], r"got an empty list of images; pass at least one image"),
    "empty batch": (lambda t: torch.zeros(0, 3, 32, 32), r"got an empty batch of images"),
}


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _link(path, target):
    path.symlink_to(target)
    return path


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_an_input_error_naming_it(model, tmp_path, case):
    make, message = BAD[case]
    with pytest.raises(facezoo.InputError, match=message) as info:
        model.predict(make(tmp_path), detect=False)
    error = info.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__), "a PIL/torch traceback leaked"


def test_a_file_without_read_permission_is_named_as_such(model, tmp_path, monkeypatch):
    path = _write(tmp_path / "private.jpg", FACES[0].read_bytes())
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads any file: let this one refuse as it would anyone else
        real_open = os.open

        def refuse(file, *args, **kwargs):
            if os.fspath(file) == str(path):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(facezoo.InputError, match=r"private\.jpg'\): permission denied; facezoo cannot read it"):
        model.predict(path, detect=False)


@pytest.mark.parametrize("case", ["missing file", "truncated JPEG", "tiny array", "0-255 float tensor", "channels-last tensor"])
def test_errors_in_a_batch_name_the_index(model, tmp_path, case):
    make, _ = BAD[case]
    with pytest.raises(facezoo.InputError, match=r"^input 2 \("):
        model.predict([FACES[0], np.asarray(UPRIGHT), make(tmp_path)], detect=False)


def test_errors_in_a_4d_tensor_batch_name_the_index(model):
    batch = torch.rand(3, 3, 32, 32)
    batch[1] *= 255.0
    with pytest.raises(facezoo.InputError, match=r"^input 1 \(Tensor\): float tensor with values in \[[\d.e-]+, 2\d\d\]"):
        model.predict(batch, detect=False)


def test_batch_size_must_be_positive(model):
    with pytest.raises(facezoo.InputError, match="batch_size must be a positive integer, got 0"):
        model.predict(FACES[0], batch_size=0, detect=False)


def test_every_input_type_gives_the_same_result(model):
    chw = torch.from_numpy(np.array(UPRIGHT)).permute(2, 0, 1)
    expected = predict(model, FACES[0])
    for same in (str(FACES[0]), UPRIGHT, np.asarray(UPRIGHT), chw, chw.float() / 255.0):
        assert predict(model, same) == expected, type(same)


def test_4d_batches_match_single_images(model):
    images = [np.asarray(UPRIGHT.resize((64, 80))), np.asarray(GRAY.convert("RGB").resize((64, 80)))]
    singles = [predict(model, image) for image in images]
    assert [[r.to_dict() for r in faces] for faces in model.predict(np.stack(images), batch_size=1, detect=False)] == singles
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    assert [[r.to_dict() for r in faces] for faces in model.predict(batch, batch_size=1, detect=False)] == singles


def _rgba():
    image = UPRIGHT.copy()
    image.putalpha(90)
    return image


def _cmyk_roundtrip():
    return UPRIGHT.convert("CMYK")  # PIL's RGB→CMYK→RGB is lossless


# (file name, image to save, the 8-bit RGB image it must read as)
MODES = {
    "grayscale L": ("g.png", lambda: GRAY, lambda: GRAY.convert("RGB")),
    "16-bit I;16": ("g16.png", lambda: Image.fromarray(np.asarray(GRAY).astype(np.uint16) * 257), lambda: GRAY.convert("RGB")),
    "RGBA": ("a.png", _rgba, lambda: UPRIGHT),
    "CMYK": ("c.tif", _cmyk_roundtrip, lambda: UPRIGHT),
    "palette": ("p.png", lambda: UPRIGHT.quantize(64), lambda: UPRIGHT.quantize(64).convert("RGB")),
}


@pytest.mark.parametrize("case", list(MODES))
def test_colour_modes_convert_to_the_same_rgb(model, tmp_path, case):
    name, image, rgb = MODES[case]
    path = _save(tmp_path, name, image())
    assert Image.open(path).mode == image().mode
    assert predict(model, path) == predict(model, np.asarray(rgb())) == predict(model, image())


def test_2d_gray_array_is_gray_rgb(model):
    assert predict(model, np.asarray(GRAY)) == predict(model, np.asarray(GRAY.convert("RGB")))


def test_cmyk_jpeg_reads_close_to_the_rgb_original(model, tmp_path):
    path = _save(tmp_path, "c.jpg", UPRIGHT.convert("CMYK"), quality=95)
    assert np.abs(np.asarray(load_image(path), np.float32) - np.asarray(UPRIGHT, np.float32)).mean() < 2.0
    assert len(predict(model, path)) == 1


# EXIF orientation → the transpose that turns the upright image into what the file stores.
STORED = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", list(STORED))
def test_exif_rotated_image_predicts_like_the_upright_one(model, tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(tmp_path, "rotated.png", UPRIGHT.transpose(STORED[orientation]), exif=exif)
    expected = predict(model, UPRIGHT)
    assert predict(model, path) == expected
    assert predict(model, Image.open(path)) == expected


def test_exif_rotated_jpeg_is_read_upright(model, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(tmp_path, "rotated.jpg", UPRIGHT.transpose(Image.Transpose.ROTATE_90), exif=exif, quality=95)
    assert Image.open(path).size == (300, 240) and load_image(path).size == (240, 300)
    [result] = predict(model, path)
    assert max(x for x, _ in result["points"]) < 240 * 2, "points are in the upright image's coordinates"


def test_very_large_image(model, tmp_path):
    large = UPRIGHT.resize((4000, 3000))
    assert len(predict(model, _save(tmp_path, "large.jpg", large, quality=85))[0]["points"]) == 68
    points = np.asarray(predict(model, large)[0]["points"])
    height, width = model.config.preprocess.input_size
    small = np.asarray(predict(model, large.resize((width, height), Image.Resampling.BILINEAR))[0]["points"])
    # Pixel centres sit at integer coordinates: a point maps as (p + 0.5) * scale - 0.5.
    assert np.allclose((small + 0.5) * [4000 / width, 3000 / height] - 0.5, points, atol=0.05), "points are in the large image's pixels"


def test_decode_image_reads_bytes_as_load_image_reads_the_file():
    assert np.array_equal(np.asarray(decode_image(FACES[0].read_bytes())), np.asarray(load_image(FACES[0])))


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"these are notes, not a JPEG", facezoo.NotAnImageError, r"upload: not an image Pillow can read"),
        (FACES[0].read_bytes()[:7000], facezoo.InputError, r"upload: the image is corrupt or truncated"),
        (png_claiming(8000, 6000), facezoo.ImageTooLargeError, r"upload: 8000×6000 px \(48\.0 megapixels\) is over the limit of 40\.0"),
        (png_claiming(30000, 30000), facezoo.ImageTooLargeError, r"upload: Image size \(900000000 pixels\) exceeds limit .*Downscale it first"),
    ],
    ids=["not an image", "truncated", "over max_pixels", "decompression bomb"],
)
def test_decode_image_errors_name_the_input(data, error, message):
    with pytest.raises(error, match=message) as info:
        decode_image(data, "upload", max_pixels=40_000_000)
    error = info.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__), "a PIL traceback leaked"

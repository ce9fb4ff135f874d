"""ONNX export of a model, for deployment: a model directory with its ``model.onnx`` and int8
quantisation with calibration faces (docs/deployment.md).

This module sits above the factory (it loads the model to export); the runtime below
(:mod:`facezoo._onnx`: sessions, ``OnnxNetwork``, weight stamps and the torch → ONNX conversion a
cache miss needs) never imports it. onnxruntime's quantisation tools load on the first int8
export.

Example:
    >>> from facezoo.onnx_export import export_model_dir
    >>> export_model_dir("beauty", "my-beauty", check_faces=faces)  # doctest: +SKIP
    PosixPath('my-beauty')

``python -m facezoo.onnx_export DIR [DIR ...]`` (re)builds ``model.onnx`` in model directories in
place, checked against torch on the faces of :data:`facezoo.testing.PHOTOS`: how the shipped
models got theirs, so that the lean install (no torch) runs them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ._factory import load
from ._model_dir import MODEL_FILES
from ._onnx import INT8_NAME, ONNX_NAME, export_network, onnxruntime, weights_digest, write_stamp
from .errors import FacezooError
from .testing import PHOTOS

__all__ = ["add_onnx", "export_model_dir", "export_network", "quantize_int8"]


class _Calibration:
    """onnxruntime's CalibrationDataReader over normalised faces, in small batches."""

    def __init__(self, batches, name: str):
        self.batches, self.name = iter(batches), name

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {self.name: batch}


def quantize_int8(model, source: Path, target: Path, calibration_faces) -> Path:
    """Static int8 (QDQ, per-channel 7-bit weights, min-max calibrated on ``calibration_faces``:
    uint8 ``N×H×W×3`` framed training faces) of the float ONNX file ``source``, written atomically.

    Weights use 7 of their 8 bits (``reduce_range``): x86 CPUs without VNNI (AVX2 only) multiply
    uint8 by int8 in saturating 16-bit sums, which costs full-range models several points of
    accuracy there and nothing on VNNI CPUs.

    Example:
        >>> model = facezoo.load("beauty", runtime="torch")  # doctest: +SKIP
        >>> float32 = model.export_onnx("out/model.onnx")  # doctest: +SKIP
        >>> quantize_int8(model, float32, Path("out/model.int8.onnx"), training_faces)  # doctest: +SKIP
        PosixPath('out/model.int8.onnx')
    """
    onnxruntime()
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    faces = np.asarray(calibration_faces)
    batches = [model.transform.normalize(faces[i : i + 16]) for i in range(0, len(faces), 16)]
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".quantize-") as tmp:
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / target.name
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(quantized), _Calibration(batches, "images"), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax, reduce_range=True,
        )
        os.replace(quantized, target)
    return target


def export_model_dir(source, target: str | Path, *, quantize: str | None = None, calibration=None, check_faces=None) -> Path:
    """A copy of model ``source`` (anything ``facezoo.load`` takes) in ``target`` with its
    ``model.onnx`` (checked against torch on ``check_faces`` when given) and, with
    ``quantize="int8"``, ``model.int8.onnx`` calibrated on ``calibration`` (uint8 framed faces);
    what ``facezoo export MODEL DIR --format onnx`` runs. Both files carry their weights stamp.

    Example:
        >>> export_model_dir("beauty", "my-beauty")  # doctest: +SKIP
        PosixPath('my-beauty')
        >>> facezoo.load("my-beauty", runtime="onnx").network.path  # doctest: +SKIP
        PosixPath('my-beauty/model.onnx')
    """
    model = load(source, runtime="torch")
    target = Path(target)
    model.save_pretrained(target)
    source_dir = Path(str(source)) if Path(str(source)).is_dir() else None
    if source_dir is not None and (source_dir / "README.md").exists():
        shutil.copyfile(source_dir / "README.md", target / MODEL_FILES[2])
    digest = weights_digest(target)
    path = export_network(model, target / ONNX_NAME, check_faces=check_faces)
    write_stamp(path, digest, quantize=None)
    if quantize == "int8":
        if calibration is None:
            raise FacezooError("int8 quantisation needs calibration faces: give --calibration DATASET:SPLIT[:N] (training faces, not test ones)")
        int8 = quantize_int8(model, path, target / INT8_NAME, calibration)
        write_stamp(int8, digest, quantize="int8")
    return target


def add_onnx(directory: str | Path, check_faces=None) -> Path:
    """Build ``model.onnx`` beside the weights of model directory ``directory`` (in place; its
    other files are left as they are), stamped with the weights it was built from and checked
    against torch on ``check_faces`` (uint8 framed faces) when given.

    Example:
        >>> add_onnx("plugins/facezoo_beauty/weights/efficientnet_lite0.face-init")  # doctest: +SKIP
        PosixPath('plugins/facezoo_beauty/weights/efficientnet_lite0.face-init/model.onnx')
    """
    directory = Path(directory)
    model = load(directory, runtime="torch")
    path = export_network(model, directory / ONNX_NAME, check_faces=check_faces)
    write_stamp(path, weights_digest(directory), quantize=None)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m facezoo.onnx_export", description="(Re)build model.onnx in model directories, checked against torch.")
    parser.add_argument("directories", nargs="+", type=Path)
    args = parser.parse_args(argv)
    photos = sorted(PHOTOS.glob("*.jpg"))
    for directory in args.directories:
        model = load(directory, runtime="torch")
        crops, _, _ = model.prepare(photos)
        path = add_onnx(directory, np.stack([np.asarray(crop.image) for crop in crops]))
        print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, checked on {len(crops)} faces")


if __name__ == "__main__":
    main()

"""FaceModel: a network (torch, or its ONNX export) with the framing and postprocessing of its task.

Importing this module imports no torch: with the ONNX runtime, ``predict`` runs on numpy, Pillow
and onnxruntime alone.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from . import _plugins
from ._detect import detect_faces
from ._hub import push_directory
from ._images import as_batch, load_images
from ._model_dir import write_model_dir
from ._onnx import export_network
from ._preprocess import FaceCrop, FaceTransform
from .cards import model_card
from .config import ModelConfig
from .errors import FacezooError, InputError, WeightsError, needs_torch
from .results import Face, FaceResult

logger = logging.getLogger(__name__)


class FaceModel:
    """A face model: ``predict`` maps photos to typed results, one per face.

    Build one with :func:`facezoo.load`. ``config`` is the frozen contract saved as
    ``config.json``; ``transform`` frames and normalises faces exactly as in training;
    ``network`` computes the raw outputs: a torch :class:`~facezoo._network.FaceNetwork`
    (``runtime="torch"``, also what training uses) or an ONNX Runtime session (``runtime="onnx"``).

    Example:
        >>> model = facezoo.load("beauty", "test_resnet", pretrained=False)
        >>> [result] = model.predict("facezoo/testing/photos/portrait.jpg", detect=False)
        >>> 1.0 <= result.score <= 5.0
        True
    """

    weights_sha256: str | None = None
    """SHA-256 of the ``model.safetensors`` the model was loaded from (``None`` for one built in memory):
    what its outputs depend on, recorded by the face indexes built with it."""

    def __init__(self, config: ModelConfig, network: Any = None):
        self.config = config
        self.task = _plugins.registry().get("task", config.task)
        if self.task.labels and len(config.labels) != len(self.task.labels):
            raise WeightsError(
                f"{config.model_id}: config.json lists {len(config.labels)} labels {list(config.labels)}; task {config.task!r} "
                f"needs {len(self.task.labels)} (e.g. {list(self.task.labels)})"
            )
        _check_head(config, self.task)
        self.transform = FaceTransform(config.preprocess)
        if network is None:
            with needs_torch(f"{config.model_id} on torch (runtime='torch', pretrained=False or training; the shipped models run on ONNX Runtime without it)"):
                from ._network import FaceNetwork

                network = FaceNetwork(config, self.task)
        self.network = network

    def __repr__(self) -> str:
        state = "trained" if self.config.trained else "UNTRAINED (random weights)"
        return f"{type(self).__name__}({self.config.model_id!r}, {state}, runtime={self.runtime!r})"

    def with_preprocess(self, **changes: Any) -> FaceModel:
        """This model framing faces differently (another detector, score or crop), sharing its
        network (and an identity model's gallery). Its card's numbers were measured on the
        original framing, not on the new one.

        Example:
            >>> mtcnn = facezoo.load("age-gender").with_preprocess(detector="mtcnn", min_face_score=0.9)  # doctest: +SKIP
        """
        detector = changes.get("detector")
        if detector is not None:
            _plugins.registry().get("detector", detector, hint="See facezoo list detectors")
        model = copy.copy(self)
        model.config = self.config.replace(preprocess=dataclasses.replace(self.config.preprocess, **changes))
        model.transform = FaceTransform(model.config.preprocess)
        return model

    @property
    def runtime(self) -> str:
        """``"torch"`` or ``"onnx"``: what computes the network's outputs."""
        return self.network.runtime

    def to(self, device: Any) -> FaceModel:
        """Move a torch model to ``device`` (``"cpu"``, ``"cuda"``, ...); returns the model."""
        if self.runtime != "torch":
            raise FacezooError(f"{self.config.model_id} runs on ONNX Runtime; choose its device when loading it")
        self.network.to(device)
        return self

    def forward_faces(self, faces: Any, batch_size: int = 128) -> np.ndarray:
        """Raw outputs for uint8 ``N×H×W×3`` faces already framed at the input size.

        This is what evaluation runs on cached face arrays (``facezoo.data.arrays``).
        """
        faces = np.asarray(faces)
        outputs = [self.network.run(self.transform.normalize(faces[start : start + batch_size])) for start in range(0, len(faces), batch_size)]
        return np.concatenate(outputs) if outputs else np.zeros((0,), np.float32)

    def detect(self, images: list) -> list[list[Face]]:
        """Faces found by the model's detector in each RGB PIL image (on ONNX Runtime whatever the
        model runs on, when it is installed: ``facezoo._detect.detection_runtime``)."""
        pre = self.config.preprocess
        return detect_faces(pre.detector, images, min_score=pre.min_face_score, padding=pre.detect_padding)

    def prepare(self, inputs: Any, *, detect: bool | None = None, faces: list[list[Face]] | None = None) -> tuple[list[FaceCrop], int, bool]:
        """Load ``inputs`` and cut out their faces: (crops, number of images, single-image flag).

        ``faces`` (one list per image) skips detection: :func:`facezoo.analyze` detects once
        and hands the same faces to every model.
        """
        items, single = as_batch(inputs)
        images = load_images(items)
        if faces is not None:
            _check_faces(faces, len(images))
        else:
            if detect is None:
                detect = self.config.preprocess.detector is not None
            if detect and self.config.preprocess.detector is None:
                raise InputError(f"model {self.config.model_id!r} names no detector; call predict(..., detect=False).")
            faces = self.detect(images) if detect else [[None] for _ in images]
        return self.transform.crops(images, faces), len(images), single

    def predict(self, inputs: Any, *, batch_size: int = 32, detect: bool | None = None, faces: list[list[Face]] | None = None) -> list:
        """Results for one image (a list, one per face) or for a list of images (a list of such lists).

        ``inputs``: a path, PIL image, ``H×W×3`` uint8 array, ``3×H×W`` tensor (uint8 or float in
        [0, 1]), or a list of these. ``detect=False`` treats each whole image as one face;
        the default runs the model's detector when its config names one. ``faces`` (one list
        per image) uses faces found earlier instead of detecting again. An image with no face
        gives an empty list.

        Example:
            >>> model.predict(["a.jpg", "b.jpg"], detect=False)  # doctest: +SKIP
            [[BeautyResult(score=3.1, ...)], [BeautyResult(score=2.7, ...)]]
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        crops, count, single = self.prepare(inputs, detect=detect, faces=faces)
        per_image = self.predict_crops(crops, count, batch_size=batch_size)
        return per_image[0] if single else per_image

    def predict_crops(self, crops: list[FaceCrop], count: int, *, batch_size: int = 32) -> list[list[FaceResult]]:
        """Results for faces already cut out by :meth:`prepare` (or by a model with the same
        ``transform.framing``), one list per image of the ``count`` images.

        Example:
            >>> crops, count, _ = model.prepare(["a.jpg", "b.jpg"])   # doctest: +SKIP
            >>> model.predict_crops(crops, count)                      # doctest: +SKIP
            [[BeautyResult(...)], []]
        """
        results: list[FaceResult] = []
        for start in range(0, len(crops), batch_size):
            chunk = crops[start : start + batch_size]
            outputs = self.network.run(self.transform.to_array(chunk))
            check_finite(outputs, self.config.model_id)
            results.extend(self.task.postprocess(outputs, chunk, self.config))
        per_image: list[list[FaceResult]] = [[] for _ in range(count)]
        for crop, result in zip(crops, results, strict=True):
            per_image[crop.source].append(dataclasses.replace(result, model=self.config.model_id, trained=self.config.trained, face=crop.face))
        return per_image

    def save_pretrained(self, directory: str | Path, *, card: str | None = None) -> Path:
        """Write ``config.json``, ``model.safetensors`` and a ``README.md`` card to ``directory``.

        Example:
            >>> model.save_pretrained("my-model")  # doctest: +SKIP
            PosixPath('my-model')
        """
        if self.runtime != "torch":
            raise FacezooError(f"{self.config.model_id} was loaded for ONNX Runtime; load it with runtime='torch' to save its weights")
        return write_model_dir(directory, self.config, self.network.state_dict(), card if card is not None else model_card(self.config))

    def export_onnx(self, path: str | Path, *, check_faces: Any = None) -> Path:
        """Export the network to ONNX (opset 18, dynamic batch) at ``path``, atomically; with
        ``check_faces`` (uint8 ``N×H×W×3`` framed faces) its outputs are checked against torch's.

        Example:
            >>> model.export_onnx("beauty.onnx")  # doctest: +SKIP
            PosixPath('beauty.onnx')
        """
        if self.runtime != "torch":
            raise FacezooError(f"{self.config.model_id} already runs on ONNX ({self.network.path}); load it with runtime='torch' to export it")
        return export_network(self, path, check_faces=check_faces)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload to the Hugging Face Hub; returns the commit sha. See :func:`facezoo.push_directory`.

        Example:
            >>> model.push_to_hub("me/beauty-demo", tag="v1")  # doctest: +SKIP
            '3f2a…'
        """
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            return push_directory(tmp, repo_id, **kwargs)


def _check_faces(faces: Any, images: int) -> None:
    """``faces=`` must be one list of :class:`Face` records per image, as detection returns them."""
    if not isinstance(faces, (list, tuple)) or len(faces) != images or not all(isinstance(f, (list, tuple)) for f in faces):
        raise InputError(f"faces= must hold one list of faces per image: {images} lists, got {faces!r:.80}")
    for i, image_faces in enumerate(faces):
        for j, face in enumerate(image_faces):
            if not isinstance(face, Face):
                raise InputError(
                    f"faces[{i}][{j}] is a {type(face).__name__}, not a facezoo.Face; pass the faces that detection returns "
                    "(model.detect(images)), or leave faces= out to detect them"
                )


def _check_head(config: ModelConfig, task) -> None:
    """Head arguments must have the type of the task's defaults (a hand-edited "101" for 101 is an error)."""
    for name, default in task.arguments.items():
        if name not in config.head or default is None:
            continue
        value = config.head[name]
        expected = (int, float) if isinstance(default, float) else type(default)
        if isinstance(value, bool) != isinstance(default, bool) or not isinstance(value, expected):
            raise WeightsError(
                f"{config.model_id}: head argument {name!r} is {value!r} ({type(value).__name__}); task {config.task!r} "
                f"expects {type(default).__name__} (like {default!r}). Was config.json edited?"
            )


def check_finite(outputs: np.ndarray, model_id: str) -> None:
    """Raise if a model produced NaN or infinite outputs (damaged weights or preprocessing)."""
    if not np.isfinite(outputs).all():
        raise FacezooError(
            f"{model_id} produced NaN or infinite outputs: its weights or its config.json preprocessing are damaged "
            "(re-download or re-export the model)"
        )

"""FaceModel: a timm backbone plus a task head, with the preprocessing that belongs to its weights."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import _plugins
from ._backbone import create_backbone
from ._images import as_batch, load_images
from ._preprocess import FaceCrop, FaceTransform
from .config import ModelConfig
from .errors import FacezooError, InputError, WeightsError
from .results import Face, FaceResult

logger = logging.getLogger(__name__)


class FaceModel(nn.Module):
    """A face model: ``forward`` maps normalised tensors to raw outputs, ``predict`` maps photos to results.

    Build one with :func:`facezoo.load`. ``config`` is the frozen contract saved as
    ``config.json``; ``transform`` prepares faces exactly as in training.

    Example:
        >>> model = facezoo.load("beauty", "test_resnet", pretrained=False)
        >>> [result] = model.predict("tests/assets/portrait.jpg", detect=False)
        >>> 1.0 <= result.score <= 5.0
        True
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.task = _plugins.registry().get("task", config.task)
        if self.task.labels and len(config.labels) != len(self.task.labels):
            raise WeightsError(
                f"{config.model_id}: config.json lists {len(config.labels)} labels {list(config.labels)}; task {config.task!r} "
                f"needs {len(self.task.labels)} (e.g. {list(self.task.labels)})"
            )
        self.backbone = create_backbone(config.backbone, config.preprocess.input_size, pooled=self.task.pooled)
        if self.task.pooled:
            # What the classifier-less backbone outputs: for some (MobileNetV3, GhostNet) a pre-logits
            # layer makes that head_hidden_size, not num_features.
            features = getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features
        else:
            with torch.no_grad():
                features = tuple(self.backbone.eval()(torch.zeros(1, 3, *config.preprocess.input_size)).shape[1:])
        try:
            self.head = self.task.build_head(features, **config.head)
        except TypeError as exc:
            raise WeightsError(f"{config.model_id}: the head arguments {config.head} do not fit task {config.task!r} ({exc})") from None
        self.transform = FaceTransform(config.preprocess)

    def extra_repr(self) -> str:
        state = "trained" if self.config.trained else "UNTRAINED (random weights)"
        return f"model_id={self.config.model_id!r}, {state}"

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, images: torch.Tensor) -> Any:
        """Raw task outputs for a normalised ``N×3×H×W`` batch (use this for training)."""
        return self.head(self.backbone(images))

    @torch.inference_mode()
    def forward_faces(self, faces: torch.Tensor, batch_size: int = 128) -> Any:
        """Raw outputs (on the CPU) for uint8 ``N×H×W×3`` faces already at the input size.

        This is what evaluation runs on cached face arrays (``facezoo.data.arrays``). It runs the
        module in whatever mode it is in: call ``model.eval()`` first for inference outputs.
        """
        outputs = []
        for start in range(0, len(faces), batch_size):
            batch = self.transform.normalize(faces[start : start + batch_size])
            outputs.append(_float_cpu(self(batch.to(self.device, memory_format=torch.channels_last))))
        return _cat(outputs)

    def detect(self, images: list) -> list[list[Face]]:
        """Faces found by the model's detector in each RGB PIL image."""
        from ._detect import detect_faces

        pre = self.config.preprocess
        return detect_faces(pre.detector, images, min_score=pre.min_face_score, padding=pre.detect_padding)

    def prepare(
        self, inputs: Any, *, detect: bool | None = None, faces: list[list[Face]] | None = None
    ) -> tuple[list[FaceCrop], int, bool]:
        """Load ``inputs`` and cut out their faces: (crops, number of images, single-image flag).

        ``faces`` (one list per image) skips detection: :func:`facezoo.analyze` detects once
        and hands the same faces to every model.
        """
        items, single = as_batch(inputs)
        images = load_images(items)
        if faces is not None:
            if len(faces) != len(images):
                raise InputError(f"got faces for {len(faces)} images but {len(images)} images")
        else:
            if detect is None:
                detect = self.config.preprocess.detector is not None
            if detect and self.config.preprocess.detector is None:
                raise InputError(f"model {self.config.model_id!r} names no detector; call predict(..., detect=False).")
            faces = self.detect(images) if detect else [[None] for _ in images]
        crops = [self.transform.crop(img, face, i) for i, img in enumerate(images) for face in faces[i]]
        return crops, len(images), single

    @torch.inference_mode()
    def predict(
        self, inputs: Any, *, batch_size: int = 32, detect: bool | None = None, faces: list[list[Face]] | None = None
    ) -> list:
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
        if self.training:
            raise FacezooError(
                f"{self.config.model_id} is in training mode (model.train() was called), where dropout and batch norm "
                "change its answers; call model.eval() before predict()"
            )
        crops, count, single = self.prepare(inputs, detect=detect, faces=faces)
        results: list[FaceResult] = []
        for start in range(0, len(crops), batch_size):
            chunk = crops[start : start + batch_size]
            batch = self.transform.to_tensor(chunk).to(self.device, memory_format=torch.channels_last)
            outputs = self(batch)
            check_finite(outputs, self.config.model_id)
            results.extend(self.task.postprocess(outputs, chunk, self.config))
        per_image: list[list[FaceResult]] = [[] for _ in range(count)]
        for crop, result in zip(crops, results):
            per_image[crop.source].append(
                dataclasses.replace(result, model=self.config.model_id, trained=self.config.trained, face=crop.face)
            )
        return per_image[0] if single else per_image

    def save_pretrained(self, directory: str | Path, *, card: str | None = None) -> Path:
        """Write ``config.json``, ``model.safetensors`` and a ``README.md`` card to ``directory``.

        Example:
            >>> model.save_pretrained("my-model")  # doctest: +SKIP
            PosixPath('my-model')
        """
        from ._model_dir import write_model_dir
        from .cards import model_card

        return write_model_dir(directory, self.config, self.state_dict(), card if card is not None else model_card(self.config))

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload to the Hugging Face Hub; returns the commit sha. See :func:`facezoo.push_directory`.

        Example:
            >>> model.push_to_hub("me/beauty-demo", tag="v1")  # doctest: +SKIP
            '3f2a…'
        """
        import tempfile

        from ._hub import push_directory

        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            return push_directory(tmp, repo_id, **kwargs)


def _float_cpu(outputs: Any) -> Any:
    if isinstance(outputs, dict):
        return {k: v.float().cpu() for k, v in outputs.items()}
    return outputs.float().cpu()


def _cat(parts: list) -> Any:
    if parts and isinstance(parts[0], dict):
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    return torch.cat(parts)


def check_finite(outputs: Any, model_id: str) -> None:
    """Raise if a model produced NaN or infinite outputs (damaged weights or preprocessing)."""
    tensors = outputs.values() if isinstance(outputs, dict) else [outputs]
    if not all(bool(torch.isfinite(t).all()) for t in tensors):
        raise FacezooError(
            f"{model_id} produced NaN or infinite outputs: its weights or its config.json preprocessing are damaged "
            "(re-download or re-export the model)"
        )

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
from .errors import InputError
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
        self.backbone = create_backbone(config.backbone, config.preprocess.input_size)
        # What the classifier-less backbone outputs: for some (MobileNetV3, GhostNet) a pre-logits
        # layer makes that head_hidden_size, not num_features.
        features = getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features
        self.head = self.task.build_head(features, **config.head)
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

        This is what evaluation runs on cached face arrays (``facezoo.data.arrays``).
        """
        was_training = self.training
        self.eval()
        outputs = []
        try:
            for start in range(0, len(faces), batch_size):
                batch = self.transform.normalize(faces[start : start + batch_size])
                outputs.append(self(batch.to(self.device, memory_format=torch.channels_last)).float().cpu())
        finally:
            self.train(was_training)
        return torch.cat(outputs)

    def detect(self, images: list) -> list[list[Face]]:
        """Faces found by the model's detector in each RGB PIL image."""
        from ._detect import detect_faces

        return detect_faces(self.config.preprocess.detector, images, min_score=self.config.preprocess.min_face_score)

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
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        crops, count, single = self.prepare(inputs, detect=detect, faces=faces)
        was_training = self.training
        self.eval()
        try:
            results: list[FaceResult] = []
            for start in range(0, len(crops), batch_size):
                chunk = crops[start : start + batch_size]
                batch = self.transform.to_tensor(chunk).to(self.device, memory_format=torch.channels_last)
                results.extend(self.task.postprocess(self(batch), chunk, self.config))
        finally:
            self.train(was_training)
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
        from ._hub import save_model

        return save_model(self, Path(directory), card=card)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload to the Hugging Face Hub; returns the commit sha. See :func:`facezoo.push_to_hub`."""
        from ._hub import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

"""The torch network of a face model: a timm backbone and the task's head.

:class:`facezoo.FaceModel` runs it (or its ONNX export) for inference; training uses it directly
(``model.network``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ._backbone import create_backbone
from .errors import FacezooError, WeightsError


class FaceNetwork(nn.Module):
    """``backbone`` (timm, no classifier) then ``head`` (the task's): normalised ``N×3×H×W`` → raw outputs.

    Example:
        >>> net = facezoo.load("beauty", "test_resnet", pretrained=False).network
        >>> net(torch.zeros(2, 3, 112, 112)).shape
        torch.Size([2, 101])
    """

    runtime = "torch"

    def __init__(self, config, task):
        super().__init__()
        self.model_id = config.model_id
        self.backbone = create_backbone(config.backbone, config.preprocess.input_size, pooled=task.pooled)
        if task.pooled:
            # What the classifier-less backbone outputs: for some (MobileNetV3, GhostNet) a pre-logits
            # layer makes that head_hidden_size, not num_features.
            features = getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features
        else:
            with torch.no_grad():
                features = tuple(self.backbone.eval()(torch.zeros(1, 3, *config.preprocess.input_size)).shape[1:])
        try:
            self.head = task.make_head(features, config.head)
        except TypeError as exc:
            raise WeightsError(f"{config.model_id}: the head arguments {config.head} do not fit task {config.task!r} ({exc})") from None
        self.eval()

    def forward(self, images: torch.Tensor) -> Any:
        return self.head(self.backbone(images))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.inference_mode()
    def run(self, batch: np.ndarray) -> np.ndarray:
        """Raw outputs (float32 numpy) for a normalised float32 ``N×3×H×W`` numpy batch, in eval mode.

        It never flips the train/eval flag (threads may share the network): a network left in
        training mode is an error, not a silently different answer.
        """
        if self.training:
            raise FacezooError(
                f"{self.model_id} is in training mode (network.train() was called), where dropout and batch norm "
                "change its answers; call model.network.eval() before predicting"
            )
        inputs = torch.from_numpy(batch).to(self.device).contiguous(memory_format=torch.channels_last)
        return self(inputs).float().cpu().numpy()

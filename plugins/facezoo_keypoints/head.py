"""The keypoints head: regression from the unpooled feature map, so where a feature is still counts."""

from __future__ import annotations

import math

import torch
from torch import nn

from facezoo.errors import PluginError


class SpatialRegressionHead(nn.Module):
    """Feature map (``C×H×W``, or ``L×C`` tokens) → 1×1 projection to ``channels`` → flatten → linear.

    Global pooling would throw away where on the face a feature was seen; flattening the reduced
    map keeps it, at a few hundred thousand weights.
    """

    def __init__(self, feature_shape, outputs: int, channels: int = 64, dropout: float = 0.1):
        super().__init__()
        if isinstance(feature_shape, int):
            raise PluginError("the keypoints head needs the unpooled feature map: register its task with TaskSpec(pooled=False)")
        self.tokens = len(feature_shape) == 2
        in_channels = feature_shape[-1] if self.tokens else feature_shape[0]
        cells = feature_shape[0] if self.tokens else math.prod(feature_shape[1:])
        self.project = nn.Sequential(nn.Conv2d(in_channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels * cells, outputs))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.tokens:  # N×L×C → N×C×L×1
            features = features.transpose(1, 2).unsqueeze(-1)
        return self.fc(self.project(features).flatten(1))

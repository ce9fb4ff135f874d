"""The glasses backbone: a four-layer CNN that is not in timm, registered as ``glasses_cnn``."""

from __future__ import annotations

import torch
from torch import nn


class GlassesCNN(nn.Module):
    """Four 3×3 convolutions of stride 2 (16 → 128 channels), then a global average pool.

    ``pooled=False`` returns the ``N×128×H/16×W/16`` feature map instead, for spatial heads.
    """

    num_features = 128

    def __init__(self, pooled: bool = True):
        super().__init__()
        self.pooled = pooled
        layers, channels = [], 3
        for width in (16, 32, 64, 128):
            layers += [nn.Conv2d(channels, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            channels = width
        self.features = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.features(images)
        return features.mean(dim=(2, 3)) if self.pooled else features

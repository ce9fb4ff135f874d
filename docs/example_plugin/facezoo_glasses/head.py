"""The glasses head: a small MLP from pooled backbone features to two logits."""

from __future__ import annotations

import torch
from torch import nn


class GlassesHead(nn.Module):
    """Linear → ReLU → dropout → linear: ``N×num_features`` features to ``N×2`` logits."""

    def __init__(self, num_features: int, hidden: int = 128, dropout: float = 0.2):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(num_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, 2))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(features)

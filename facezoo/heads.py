"""Building blocks for task heads, shared by the built-in plugins and open to third-party ones."""

from __future__ import annotations

from torch import nn


def linear_head(num_features: int, outputs: int, dropout: float = 0.0) -> nn.Sequential:
    """Dropout then a linear layer from pooled backbone features to ``outputs`` values.

    Example:
        >>> linear_head(1280, 7, dropout=0.2)[-1].out_features
        7
    """
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(num_features, outputs))

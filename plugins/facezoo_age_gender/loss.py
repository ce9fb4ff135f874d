"""Joint age (L1, years) + gender (binary cross-entropy) loss."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from . import AGE_SCALE


class AgeGenderLoss(nn.Module):
    """``L1(age / AGE_SCALE) + gender_weight × BCE``; targets are ``N×2`` (age in years, gender 0/1)."""

    def __init__(self, gender_weight: float = 0.5):
        super().__init__()
        self.gender_weight = gender_weight

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.float()
        age = F.l1_loss(outputs[:, 0].float(), targets[:, 0] / AGE_SCALE)
        gender = F.binary_cross_entropy_with_logits(outputs[:, 1].float(), targets[:, 1])
        return age + self.gender_weight * gender

"""Age (label distribution + L1, years) and gender (binary cross-entropy) loss."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from . import MAX_AGE


def age_distribution(age: torch.Tensor) -> torch.Tensor:
    """Gaussians over the ages 0..MAX_AGE around each target age, 1 + 0.06 × age years wide."""
    ages = torch.arange(MAX_AGE + 1, dtype=torch.float32, device=age.device)
    sigma = 1.0 + 0.06 * age.clamp(min=0)
    weights = torch.exp(-0.5 * ((ages[None, :] - age[:, None]) / sigma[:, None]) ** 2)
    return weights / weights.sum(dim=1, keepdim=True)


class AgeGenderLoss(nn.Module):
    """``KL(age distribution) + L1(expected age) / 10 + gender_weight × BCE``; targets are ``N×2``
    (age in years, gender 0/1 or the probability of female)."""

    def __init__(self, gender_weight: float = 1.0):
        super().__init__()
        self.gender_weight = gender_weight

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.float()
        log_probs = outputs[:, : MAX_AGE + 1].float().log_softmax(dim=1)
        age = targets[:, 0].clamp(0, MAX_AGE)
        kl = F.kl_div(log_probs, age_distribution(age), reduction="batchmean")
        expected = log_probs.exp() @ torch.arange(MAX_AGE + 1, dtype=torch.float32, device=outputs.device)
        l1 = F.l1_loss(expected, age) / 10.0
        gender = F.binary_cross_entropy_with_logits(outputs[:, MAX_AGE + 1].float(), targets[:, 1])
        return kl + l1 + self.gender_weight * gender

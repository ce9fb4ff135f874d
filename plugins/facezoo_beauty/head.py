"""Beauty heads and loss (torch)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from facezoo.errors import FacezooError
from facezoo.heads import linear_head

from . import HIGH, LOW

MODES = ("distribution", "regression")


def bin_centers(bins: int, device=None) -> torch.Tensor:
    return torch.linspace(LOW, HIGH, bins, device=device)


class BeautyHead(nn.Module):
    """Logits over score bins (``distribution``) or one score (``regression``)."""

    def __init__(self, num_features: int, mode: str = "distribution", bins: int = 101, dropout: float = 0.2):
        super().__init__()
        if mode not in MODES:
            raise FacezooError(f"beauty head mode must be one of {MODES}, got {mode!r}")
        if mode == "distribution" and bins < 2:
            raise FacezooError(f"a score distribution needs at least 2 bins, got {bins}")
        self.fc = linear_head(num_features, bins if mode == "distribution" else 1, dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)


def expected_score(outputs: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(score on 1–5, bin probabilities or None)."""
    if mode == "regression":
        return (LOW + (HIGH - LOW) * torch.sigmoid(outputs[:, 0].float())), None
    probs = outputs.float().softmax(dim=1)
    return probs @ bin_centers(outputs.shape[1], outputs.device), probs


class BeautyLoss(nn.Module):
    """Distribution: KL to a Gaussian around the true score plus L1 on the expected score.
    Regression: L1 on the score."""

    def __init__(self, mode: str = "distribution", bins: int = 101, sigma: float = 0.15):
        super().__init__()
        self.mode, self.sigma = mode, sigma
        self.register_buffer("centers", bin_centers(bins), persistent=False)

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.float()
        score, _ = expected_score(outputs, self.mode)
        l1 = F.l1_loss(score, targets)
        if self.mode == "regression":
            return l1
        soft = torch.exp(-0.5 * ((self.centers[None, :] - targets[:, None]) / self.sigma) ** 2)
        soft = soft / soft.sum(dim=1, keepdim=True)
        return F.kl_div(outputs.float().log_softmax(dim=1), soft, reduction="batchmean") + l1

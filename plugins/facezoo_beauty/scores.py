"""From raw outputs to scores on the 1–5 scale (numpy: inference needs no torch)."""

from __future__ import annotations

import numpy as np

from . import HIGH, LOW


def expected_score(outputs, mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(score on 1–5, bin probabilities or None) of ``N×bins`` logits or ``N×1`` regression outputs."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if mode == "regression":
        return (LOW + (HIGH - LOW) / (1.0 + np.exp(-outputs[:, 0]))).astype(np.float32), None
    probabilities = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return (probabilities @ np.linspace(LOW, HIGH, outputs.shape[1])).astype(np.float32), probabilities.astype(np.float32)

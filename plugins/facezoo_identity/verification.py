"""Verification metrics: LFW-style k-fold accuracy and TAR at a fixed FAR."""

from __future__ import annotations

import numpy as np


def best_threshold(similarity: np.ndarray, same: np.ndarray) -> float:
    """The threshold that maximises accuracy on these pairs (midpoint between neighbouring scores)."""
    order = np.sort(np.unique(similarity))
    candidates = np.concatenate([[order[0] - 1e-6], (order[1:] + order[:-1]) / 2, [order[-1] + 1e-6]])
    accuracy = [((similarity >= t) == same).mean() for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def kfold_accuracy(similarity: np.ndarray, same: np.ndarray, folds: np.ndarray) -> tuple[float, float, float]:
    """Mean and std of accuracy over folds (threshold fitted on the others) and the mean threshold."""
    accuracies, thresholds = [], []
    for fold in np.unique(folds):
        test = folds == fold
        threshold = best_threshold(similarity[~test], same[~test])
        thresholds.append(threshold)
        accuracies.append(((similarity[test] >= threshold) == same[test]).mean())
    return float(np.mean(accuracies)), float(np.std(accuracies)), float(np.mean(thresholds))


def tar_at_far(similarity: np.ndarray, same: np.ndarray, far: float = 1e-3) -> float:
    """True-accept rate at the strictest threshold whose false-accept rate is at most ``far``."""
    impostor = np.sort(similarity[~same])[::-1]
    allowed = int(np.floor(far * len(impostor)))
    threshold = impostor[allowed] if allowed < len(impostor) else -np.inf
    return float((similarity[same] > threshold).mean())


def verification_report(embeddings: np.ndarray, pairs: list[tuple[int, int, bool, int]], threshold: float | None = None) -> dict[str, float]:
    """All verification metrics for L2-normalised ``embeddings`` and (a, b, same, fold) ``pairs``;
    with ``threshold``, also the accuracy at that fixed threshold (the model's own)."""
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    same = np.array([p[2] for p in pairs], dtype=bool)
    folds = np.array([p[3] for p in pairs])
    similarity = np.einsum("ij,ij->i", embeddings[a], embeddings[b])
    fixed = threshold
    mean, std, threshold = kfold_accuracy(similarity, same, folds)
    report = {"accuracy": mean, "accuracy_std": std, "fitted_threshold": threshold, "tar_at_far_1e-3": tar_at_far(similarity, same, 1e-3)}
    if fixed is not None:
        report["accuracy_at_model_threshold"] = float(((similarity >= fixed) == same).mean())
    return report

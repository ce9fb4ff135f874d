"""Verification metrics: LFW-style k-fold accuracy and TAR at a fixed FAR."""

from __future__ import annotations

import numpy as np


def best_threshold(similarity: np.ndarray, same: np.ndarray, balanced: bool = False) -> float:
    """The threshold that maximises accuracy on these pairs (midpoint between neighbouring scores).

    ``balanced=True`` maximises the mean of the true-accept and true-reject rates instead: all pairs
    of a set of faces are mostly different people, and plain accuracy on them picks a threshold too
    strict for a balanced test such as LFW's.

    Example:
        >>> best_threshold(np.array([0.1, 0.2, 0.8, 0.9]), np.array([False, False, True, True]))
        0.5
    """
    order = np.argsort(similarity, kind="stable")
    scores, labels = similarity[order], np.asarray(same, dtype=bool)[order]
    # cut k: pairs k.. are called "same"; a cut is only possible between different scores
    cuts = np.concatenate([[0], np.flatnonzero(np.diff(scores) > 0) + 1, [len(scores)]])
    accepted_same = labels.sum() - np.concatenate([[0], np.cumsum(labels)])[cuts]
    rejected_different = np.concatenate([[0], np.cumsum(~labels)])[cuts]
    if balanced:
        score = accepted_same / max(labels.sum(), 1) + rejected_different / max((~labels).sum(), 1)
    else:
        score = accepted_same + rejected_different
    best = cuts[int(np.argmax(score))]
    if best == 0:
        return float(scores[0] - 1e-6)
    if best == len(scores):
        return float(scores[-1] + 1e-6)
    return float((scores[best - 1] + scores[best]) / 2)


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

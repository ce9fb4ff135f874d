"""Built-in task plugin: facial beauty on SCUT-FBP5500's 1–5 scale.

Two heads: ``mode="distribution"`` predicts a distribution over ``bins`` scores evenly spaced on
[1, 5] and reports its expected value (``bins=5`` is the classic 1–5 classifier, ``bins=101`` the
fine score distribution); ``mode="regression"`` predicts the score directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facezoo import DatasetSpec, FaceResult, Preprocess, TaskSpec, hookimpl
from facezoo.registry import shipped_models

LOW, HIGH = 1.0, 5.0


@dataclass(frozen=True, kw_only=True)
class BeautyResult(FaceResult):
    """``score`` on the 1–5 scale; ``distribution`` over the head's bins when it predicts one."""

    score: float
    distribution: list[float] | None = None

    def caption(self) -> str:
        """The score with its scale, e.g. ``beauty 2.80 on 1-5``."""
        return f"beauty {self.score:.2f} on {LOW:g}-{HIGH:g}"


def build_head(num_features: int, mode: str = "distribution", bins: int = 101, dropout: float = 0.2):
    from .head import BeautyHead

    return BeautyHead(num_features, mode=mode, bins=bins, dropout=dropout)


def output_width(mode: str, bins: int) -> int:
    """Logits over ``bins`` score bins, or one score (``regression``)."""
    return bins if mode == "distribution" else 1


def build_loss(mode: str = "distribution", bins: int = 101):
    """Named after the head's arguments: the loss compares the distribution over the head's ``bins``."""
    from .head import BeautyLoss

    return BeautyLoss(mode=mode, bins=bins)


def decode(outputs, config):
    """Raw outputs → the score on the 1–5 scale (``N``)."""
    from .scores import expected_score

    return expected_score(outputs, config.head.get("mode", "distribution"))[0]


def postprocess(outputs, crops, config) -> list[BeautyResult]:
    from .scores import expected_score

    scores, probs = expected_score(outputs, config.head.get("mode", "distribution"))
    return [
        BeautyResult(score=round(float(s), 4), distribution=[round(float(p), 6) for p in pr] if pr is not None else None)
        for s, pr in zip(scores.tolist(), probs if probs is not None else [None] * len(scores), strict=True)
    ]


def metrics(predictions, targets, config) -> dict[str, float]:
    """Pearson correlation (PC), MAE and RMSE of the predicted score."""
    import numpy as np

    pred, targets = np.asarray(predictions, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    err = pred - targets
    spread = pred.std() * targets.std()
    pc = float(((pred - pred.mean()) * (targets - targets.mean())).mean() / spread) if spread > 0 else 0.0
    return {"pc": pc, "mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err**2).mean()))}


def synthetic_targets(n: int):
    """``n`` seeded random scores on the 1–5 scale (for facezoo.testing)."""
    import numpy as np

    return (LOW + (HIGH - LOW) * np.random.default_rng(0).random(n)).astype(np.float32)


@hookimpl
def facezoo_register_datasets(register):
    from facezoo.cards import Baseline

    from . import data

    source = "ComboLoss README (lucasxlu/ComboLoss @006c2f47), read in docs/anchors.md"
    register(
        DatasetSpec(
            "scut-fbp5500",
            task="beauty",
            build=data.build,
            splits=data.SPLITS,
            summary="SCUT-FBP5500: 5,500 faces, mean of 60 raters' 1–5 scores; 60/40 split and 5 folds",
            license=data.LICENSE,
            baselines=(
                Baseline("ComboLoss SEResNeXt50", "pc", 0.9117, source, "60/40 split, best row"),
                Baseline("SEResNeXt50 + L1 (ComboLoss ablation)", "pc", 0.9012, source, "60/40 split"),
                Baseline("ComboNet ResNet18", "pc", 0.9041, source, "60/40 split"),
                Baseline("ComboLoss SEResNeXt50", "mae", 0.2126, source, "60/40 split"),
                Baseline("ComboLoss SEResNeXt50", "rmse", 0.2813, source, "60/40 split"),
            ),
        )
    )


@hookimpl
def facezoo_register_models(register):
    register(shipped_models("beauty", Path(__file__).parent / "weights", default="dlib_resnet.face-init"))


@hookimpl
def facezoo_register_tasks(register):
    register(
        TaskSpec(
            name="beauty",
            summary="Facial attractiveness score on the 1–5 scale of SCUT-FBP5500",
            build_head=build_head,
            build_loss=build_loss,
            postprocess=postprocess,
            metrics=metrics,
            decode=decode,
            preprocess=Preprocess(input_size=(112, 112), crop="align", scale=0.75),
            head={"mode": "distribution", "bins": 101, "dropout": 0.2},
            default_backbone="efficientnet_lite0",
            monitor=("pc", "max"),
            tolerances=(("pc", "max", 0.01),),
            output_width=output_width,
            synthetic_targets=synthetic_targets,
        )
    )

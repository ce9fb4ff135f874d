"""Built-in task plugin: facial expression, FER2013's seven classes."""

from __future__ import annotations

from dataclasses import dataclass

from facezoo import DatasetSpec, FaceResult, Preprocess, TaskSpec, hookimpl

LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


@dataclass(frozen=True, kw_only=True)
class ExpressionResult(FaceResult):
    """The most likely expression and the probability of each."""

    label: str
    probabilities: dict[str, float]


def build_head(num_features: int, num_classes: int = len(LABELS), dropout: float = 0.3, **_):
    from facezoo.heads import linear_head

    return linear_head(num_features, num_classes, dropout)


def build_loss(class_weights: list[float] | None = None, label_smoothing: float = 0.0, **_):
    """Cross-entropy; ``class_weights`` (one per label) counter FER2013's class imbalance."""
    import torch
    from torch import nn

    weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)


def postprocess(outputs, crops, config) -> list[ExpressionResult]:
    probs = outputs.float().softmax(dim=1)
    labels = config.labels
    return [
        ExpressionResult(label=labels[int(row.argmax())], probabilities={l: round(float(p), 6) for l, p in zip(labels, row)})
        for row in probs
    ]


def metrics(outputs, targets, config) -> dict[str, float]:
    """Accuracy and mean per-class recall."""
    pred = outputs.argmax(dim=1)
    recalls = [float((pred[targets == c] == c).float().mean()) for c in range(outputs.shape[1]) if (targets == c).any()]
    return {"accuracy": float((pred == targets).float().mean()), "mean_class_recall": sum(recalls) / max(len(recalls), 1)}


@hookimpl
def facezoo_register_datasets(register):
    from facezoo.cards import Baseline

    from . import data

    rmn = "phamquiluan/ResidualMaskingNetwork README @04eef006, read in docs/anchors.md"
    register(
        DatasetSpec(
            "fer2013",
            task="expression",
            build=data.build,
            splits=tuple(data.FOLDERS),
            summary="FER2013: 48×48 gray faces, 7 expressions; train = Training, val = PublicTest, test = PrivateTest",
            license=data.LICENSE,
            baselines=(
                Baseline("VGGNet, tuned (Khaireddin & Chen 2021)", "accuracy", 0.7328, "arXiv:2105.03588 abstract", "PrivateTest, single network"),
                Baseline("Residual Masking Network (Pham et al., ICPR 2020)", "accuracy", 0.7414, rmn, "PrivateTest, single network"),
                Baseline("ResNet34 (same README)", "accuracy", 0.7242, rmn, "PrivateTest"),
                Baseline("VGG19 (same README)", "accuracy", 0.7080, rmn, "PrivateTest"),
            ),
        )
    )


@hookimpl
def facezoo_register_models(register):
    from pathlib import Path

    from facezoo.registry import shipped_models

    for spec in shipped_models('expression', Path(__file__).parent / "weights", default='efficientnet_lite0.fer2013'):
        register(spec)


@hookimpl
def facezoo_register_tasks(register):
    register(
        TaskSpec(
            name="expression",
            summary="Facial expression: angry, disgust, fear, happy, neutral, sad, surprise (FER2013)",
            build_head=build_head,
            build_loss=build_loss,
            postprocess=postprocess,
            metrics=metrics,
            preprocess=Preprocess(input_size=(96, 96), crop="box", margin=0.1, grayscale=True),
            head={"num_classes": len(LABELS), "dropout": 0.3, "class_weights": None, "label_smoothing": 0.0},
            labels=LABELS,
            default_backbone="efficientnet_lite0",
            monitor=("accuracy", "max"),
        )
    )

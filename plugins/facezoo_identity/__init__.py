"""Built-in task plugin: face identity — embeddings, verification and a small gallery."""

from __future__ import annotations

from dataclasses import dataclass

from facezoo import DatasetSpec, FaceResult, Preprocess, TaskSpec, hookimpl


@dataclass(frozen=True)
class Match:
    """A gallery person and the cosine similarity of the face to them."""

    name: str
    similarity: float

    def to_dict(self) -> dict:
        return {"name": self.name, "similarity": self.similarity}


@dataclass(frozen=True, kw_only=True)
class IdentityResult(FaceResult):
    """L2-normalised ``embedding``; ``matches`` are the closest gallery people, best first."""

    embedding: list[float]
    matches: list[Match] | None = None

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["matches"] = [m.to_dict() for m in self.matches] if self.matches is not None else None
        return out


@dataclass(frozen=True)
class Verification:
    """Whether two faces are the same person: cosine ``similarity`` against the model's ``threshold``."""

    same: bool
    similarity: float
    threshold: float

    def to_dict(self) -> dict:
        return {"same": self.same, "similarity": self.similarity, "threshold": self.threshold}


def build_head(num_features: int, embedding_dim: int = 128, dropout: float = 0.0, **_):
    from .model import EmbeddingHead

    return EmbeddingHead(num_features, embedding_dim, dropout)


def build_loss(num_classes: int | None = None, embedding_dim: int = 128, loss: str = "arcface", margin: float = 0.3, scale: float = 32.0, **_):
    """Margin-based softmax over ``num_classes`` identities: ``arcface`` (additive angle) or ``cosface``."""
    from .model import MarginLoss

    return MarginLoss(num_classes=num_classes, embedding_dim=embedding_dim, kind=loss, margin=margin, scale=scale)


def postprocess(outputs, crops, config) -> list[IdentityResult]:
    return [IdentityResult(embedding=[round(float(v), 6) for v in row]) for row in outputs.float().cpu()]


def evaluate_pairs(model, dataset, batch_size: int = 128, limit: int | None = None, detector: str | None = None) -> dict:
    """LFW-style verification: 10-fold accuracy (threshold fitted on 9 folds) and TAR at FAR 1e-3.

    ``limit`` keeps the first ``limit // folds`` pairs of each fold (same and different pairs alike).
    """
    import numpy as np
    import torch

    from facezoo.data.arrays import face_arrays

    from .verification import verification_report

    pairs = dataset.extra["pairs"]
    protocol = "View 2, 10 folds, " + (f"detect ({detector}) → {model.config.preprocess.crop} crop" if detector else "pre-cropped")
    if limit is not None and limit < len(pairs):
        per_fold = max(2, limit // dataset.extra["folds"])
        by_fold: dict[int, list] = {}
        for pair in pairs:
            by_fold.setdefault(pair[3], []).append(pair)
        pairs = [p for fold in by_fold.values() for p in (fold[: per_fold // 2] + fold[len(fold) // 2 : len(fold) // 2 + per_fold // 2])]
        protocol += f", subset of {len(pairs)} pairs"
    used = sorted({i for p in pairs for i in p[:2]})
    remap = {old: new for new, old in enumerate(used)}
    subset = dataset.subset(used)
    images, _, found = face_arrays(subset, model.transform, model.task, detector=detector, progress=False)
    embeddings = torch.nn.functional.normalize(model.forward_faces(images, batch_size), dim=1).numpy()
    report = verification_report(np.asarray(embeddings), [(remap[a], remap[b], same, fold) for a, b, same, fold in pairs])
    if detector:
        report["detected"] = float(found.float().mean())
    return {**report, "protocol": protocol}


@hookimpl
def facezoo_register_datasets(register):
    from facezoo.cards import Baseline

    from . import data

    anchors = "read in docs/anchors.md"
    for name, summary in (("celeba", "CelebA subset: 200 identities × 30 aligned 80 px crops (LFW-disjoint)"),
                          ("bollywood", "31 Bollywood actors × 30 64 px crops (LFW names removed)")):
        register(DatasetSpec(name, task="identity", build=data.build_people(name), splits=("train",), summary=summary, license=data.LICENSES[name]))
    register(
        DatasetSpec(
            "fewshot-five",
            task="identity",
            build=data.build_fewshot,
            splits=("train", "val"),
            summary="5 Celebrity Faces: whole photos of 5 people, for the enrol-a-few-photos demo (never for training)",
            license=data.LICENSES["fewshot-five"],
        )
    )
    register(
        DatasetSpec(
            "lfw",
            task="identity",
            build=data.build_lfw,
            splits=("view2",),
            summary="LFW View 2: 6,000 pairs in 10 folds (verification test protocol only)",
            license=data.LICENSES["lfw"],
            evaluate=evaluate_pairs,
            baselines=(
                Baseline("DeepFace (Taigman et al., CVPR 2014)", "accuracy", 0.9735, anchors, "trained on 4M external faces"),
                Baseline("FaceNet (Schroff et al., CVPR 2015)", "accuracy", 0.9963, anchors, "200M external faces"),
                Baseline("MobileFaceNet (Chen et al., 2018)", "accuracy", 0.9955, anchors, "MS-Celeb-1M"),
                Baseline("facenet Inception-ResNet-v1, CASIA-WebFace", "accuracy", 0.9905, anchors, "10k identities"),
            ),
        )
    )


@hookimpl
def facezoo_register_models(register):
    from pathlib import Path

    from facezoo.registry import shipped_models

    for spec in shipped_models('identity', Path(__file__).parent / "weights", default='efficientnet_lite0.distilled-dlib'):
        register(spec)


@hookimpl
def facezoo_register_tasks(register):
    register(
        TaskSpec(
            name="identity",
            summary="Face embeddings: verification (same person or not) and a gallery to recognise enrolled people",
            build_head=build_head,
            build_loss=build_loss,
            postprocess=postprocess,
            preprocess=Preprocess(input_size=(112, 112), crop="align"),
            head={"embedding_dim": 128, "dropout": 0.0, "loss": "arcface", "margin": 0.3, "scale": 32.0, "threshold": 0.5},
            model_class="facezoo_identity.model:IdentityModel",
            default_backbone="efficientnet_lite0",
        )
    )

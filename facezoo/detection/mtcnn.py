"""MTCNN face detector (P-Net -> R-Net -> O-Net cascade), the cascade in numpy.

Implements Zhang et al., "Joint Face Detection and Alignment Using Multitask Cascaded
Convolutional Networks" (IEEE SPL 2016), following the detection procedure of the
facenet-pytorch port, whose MIT-licensed weights ship converted (see
:mod:`facezoo.detection.mtcnn_nets`). The three networks run on PyTorch or, from their ONNX
exports, on ONNX Runtime; everything around them (image pyramid, crops, non-maximum suppression)
is numpy, the same for both, so the ONNX path imports no torch.

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
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from facezoo._onnx import session
from facezoo.detection.base import Detection, FaceDetector
from facezoo.detection.boxes import as_rgb, nms
from facezoo.errors import ConfigError, needs_torch

__all__ = ["MTCNN", "ONNX_PATHS", "WEIGHTS_PATH"]

logger = logging.getLogger(__name__)

#: The converted weights shipped with the package, and the networks' ONNX exports beside them.
WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "mtcnn.safetensors"
ONNX_PATHS = {name: WEIGHTS_PATH.with_name(f"mtcnn-{name}.onnx") for name in ("pnet", "rnet", "onet")}

_PNET_STRIDE = 2
_PNET_CELL = 12
_NET_BATCH = 512  # crops per R-Net / O-Net forward pass
_BLACK = (0.0 - 127.5) * 0.0078125  # a black pixel after MTCNN's input normalisation

Runner = Callable[[np.ndarray], tuple]


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


def _pool_axis(sums: np.ndarray, axis: int, length: int, out: int) -> np.ndarray:
    """Average ``out`` windows along ``axis`` from its zero-led cumulative ``sums``: window ``i``
    covers ``floor(i·length/out)`` to ``ceil((i+1)·length/out)`` (windows may overlap)."""
    start = (np.arange(out) * length) // out
    stop = -((-(np.arange(out) + 1) * length) // out)
    shape = [1] * sums.ndim
    shape[axis] = out
    return (np.take(sums, stop, axis=axis) - np.take(sums, start, axis=axis)) / (stop - start).reshape(shape)


def _pool_matrix(length: int, out: int) -> np.ndarray:
    """The ``out×length`` matrix of adaptive average pooling along one axis."""
    start = (np.arange(out) * length) // out
    stop = -((-(np.arange(out) + 1) * length) // out)
    index = np.arange(length)
    inside = (index[None, :] >= start[:, None]) & (index[None, :] < stop[:, None])
    return (inside / (stop - start)[:, None]).astype(np.float32)


def _cumsum0(values: np.ndarray, axis: int) -> np.ndarray:
    """Cumulative sums along ``axis`` (float64) with a leading zero."""
    sums = np.cumsum(values, axis=axis, dtype=np.float64)
    pad = [(0, 0)] * values.ndim
    pad[axis] = (1, 0)
    return np.pad(sums, pad)


def _area_resize(images: np.ndarray, sizes: list[tuple[int, int]]) -> list[np.ndarray]:
    """Area (adaptive average) resizes of ``N×C×H×W`` float images to each of ``sizes``, as
    PyTorch's ``interpolate(mode="area")``; the row sums are shared by all sizes."""
    height, width = images.shape[2:]
    rows = _cumsum0(images, 2)
    return [
        _pool_axis(_cumsum0(_pool_axis(rows, 2, height, out_h), 3), 3, width, out_w).astype(np.float32) for out_h, out_w in sizes
    ]


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each ``(x1, y1, x2, y2)`` box to a square around its centre (side = longer side)."""
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    side = wh.max(axis=1, keepdims=True)
    top_left = boxes[:, 0:2] + 0.5 * wh - 0.5 * side
    return np.concatenate([top_left, top_left + side], axis=1)


def _regress(boxes: np.ndarray, offsets: np.ndarray, plus_one: bool = True) -> np.ndarray:
    """Apply box-regression offsets, which are fractions of the box width/height."""
    wh = boxes[:, 2:4] - boxes[:, 0:2] + (1.0 if plus_one else 0.0)
    return boxes + offsets * np.tile(wh, 2)


def _crop_and_resize(images: np.ndarray, image_idx: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut each box out of its image and area-resize it to ``size``.

    Boxes use MTCNN's 1-based inclusive pixel convention after truncation. Parts of a box outside
    the image are black (as in the original MTCNN code), so a face touching the border keeps its
    shape instead of being stretched. Returns the crops ``(K, 3, size, size)`` and a boolean
    mask of the boxes that overlap the image.
    """
    height, width = images.shape[2:]
    b = np.trunc(boxes).astype(np.int64)
    x1, y1 = np.maximum(b[:, 0], 1), np.maximum(b[:, 1], 1)
    x2, y2 = np.minimum(b[:, 2], width), np.minimum(b[:, 3], height)
    valid = (x2 >= x1) & (y2 >= y1) & (b[:, 2] >= b[:, 0]) & (b[:, 3] >= b[:, 1])
    crops = []
    for k in np.flatnonzero(valid):
        bx1, by1, bx2, by2 = b[k]
        region = images[image_idx[k] : image_idx[k] + 1, :, y1[k] - 1 : y2[k], x1[k] - 1 : x2[k]]
        if (x1[k], y1[k], x2[k], y2[k]) != (bx1, by1, bx2, by2):
            canvas = np.full((1, 3, by2 - by1 + 1, bx2 - bx1 + 1), _BLACK, dtype=np.float32)
            canvas[:, :, y1[k] - by1 : y2[k] - by1 + 1, x1[k] - bx1 : x2[k] - bx1 + 1] = region
            region = canvas
        # Area resize as two small matrix products (many crops: cheaper than cumulative sums).
        crops.append(np.einsum("oh,nchw,pw->ncop", _pool_matrix(region.shape[2], size), region, _pool_matrix(region.shape[3], size), optimize=True))
    if not crops:
        return np.zeros((0, 3, size, size), dtype=np.float32), valid
    return np.concatenate(crops), valid


def onnx_runners(paths: dict[str, Path], threads: int | None = None) -> dict[str, Runner]:
    """ONNX Runtime sessions of the three networks as runners (numpy in, tuple of numpy out)."""
    def runner(path: Path) -> Runner:
        sess = session(path, threads)
        name = sess.get_inputs()[0].name
        return lambda x: tuple(sess.run(None, {name: x}))

    return {net: runner(path) for net, path in paths.items()}


class MTCNN(FaceDetector):
    """Multi-task cascaded CNN face detector with five landmarks.

    Args:
        runners: ``{"pnet", "rnet", "onet"}`` → a function from a float32 NCHW numpy batch to the
            network's outputs; :meth:`from_pretrained` builds them for PyTorch or ONNX Runtime.
        max_side: images whose longer side exceeds this are downscaled to it before detection
            (results are mapped back to the original coordinates); bounds time and memory.
        image_batch_size: at most this many same-sized images share one P-Net pyramid pass.

    Example:
        >>> import numpy as np
        >>> detector = MTCNN.from_pretrained()
        >>> detector.detect([np.full((480, 640, 3), 128, dtype=np.uint8)])
        [[]]
    """

    name = "mtcnn"

    def __init__(self, runners: dict[str, Runner], max_side: int = 1600, image_batch_size: int = 4, runtime: str = "torch") -> None:
        if max_side < _PNET_CELL or image_batch_size < 1:
            raise ConfigError(f"MTCNN needs max_side >= 12 and image_batch_size >= 1, got {max_side} and {image_batch_size}")
        self.runners, self.max_side, self.image_batch_size, self.runtime = runners, max_side, image_batch_size, runtime

    @classmethod
    def from_pretrained(
        cls, path: str | Path | None = None, *, runtime: str = "torch", device: str = "cpu", max_side: int = 1600, image_batch_size: int = 4, threads: int | None = None
    ) -> MTCNN:
        """The detector with the shipped weights: ``runtime="torch"`` (safetensors, ``device``) or
        ``"onnx"`` (the shipped ONNX exports; ``path`` is then a folder holding them).

        Example:
            >>> MTCNN.from_pretrained(max_side=1024).max_side
            1024
        """
        if runtime == "onnx":
            folder = Path(path) if path else None
            paths = {net: (folder / p.name if folder else p) for net, p in ONNX_PATHS.items()}
            return cls(onnx_runners(paths, threads), max_side, image_batch_size, runtime)
        with needs_torch("MTCNN on torch (runtime='torch'; runtime='onnx' needs no torch)"):
            from .mtcnn_nets import MTCNNNets

        return cls(MTCNNNets.from_pretrained(path, device).runners(), max_side, image_batch_size, runtime)

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
            raise ConfigError(f"MTCNN.detect needs min_face_size > 0, 0 < scale_factor < 1 and three thresholds, got {min_face_size}, {scale_factor} and {thresholds}")

        results: list[list[Detection]] = [[] for _ in images]
        groups: dict[tuple[int, int], list[tuple[int, np.ndarray, float, float]]] = defaultdict(list)
        for index, image in enumerate(images):
            rgb = as_rgb(image)
            height, width = rgb.shape[:2]
            if min(height, width) < _PNET_CELL:
                continue
            rgb, sx, sy = self._limit_size(rgb)
            groups[rgb.shape[:2]].append((index, rgb, sx, sy))

        for members in groups.values():
            for start in range(0, len(members), self.image_batch_size):
                chunk = members[start : start + self.image_batch_size]
                batch = (np.stack([m[1] for m in chunk]).transpose(0, 3, 1, 2).astype(np.float32) - 127.5) * 0.0078125
                for (index, _, sx, sy), faces in zip(chunk, self._detect_batch(batch, min_face_size, thresholds, scale_factor), strict=True):
                    results[index] = [self._to_detection(face, sx, sy) for face in faces]
        return results

    def landmarks(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """O-Net's five landmarks ``(K, 5, 2)`` and face probabilities ``(K,)`` for faces that
        another detector found at ``boxes`` ``(K, 4)`` in an RGB uint8 image: each box is made
        square and cut out exactly as the cascade's last stage cuts its candidates (a box wholly
        outside the image gets probability 0 and NaN points).

        Example:
            >>> points, scores = MTCNN.from_pretrained().landmarks(np.zeros((64, 64, 3), np.uint8), np.array([[8.0, 8.0, 56.0, 56.0]]))
            >>> points.shape, bool(scores[0] < 0.5)
            ((1, 5, 2), True)
        """
        rgb = as_rgb(image)
        height, width = rgb.shape[:2]
        squares = _square(np.asarray(boxes, np.float64).reshape(-1, 4))
        points = np.full((len(squares), 5, 2), np.nan)
        scores = np.zeros(len(squares))
        crops, kept = [], []
        for k, box in enumerate(squares):
            b = np.trunc(box).astype(np.int64)
            x0, y0 = max(int(b[0]) - 1, 0), max(int(b[1]) - 1, 0)  # the box's pixels (1-based, inclusive) and no more
            region = rgb[y0 : max(y0, min(int(b[3]), height)), x0 : max(x0, min(int(b[2]), width))]
            local = (region.transpose(2, 0, 1)[None].astype(np.float32) - 127.5) * 0.0078125
            crop, valid = _crop_and_resize(local, np.zeros(1, np.int64), (box - [x0, y0, x0, y0])[None], 48)
            if valid[0] and region.size:
                crops.append(crop)
                kept.append(k)
        if kept:
            prob, _, marks = self._run_chunked("onet", np.concatenate(crops))
            chosen = squares[kept]
            side = chosen[:, 2:4] - chosen[:, 0:2] + 1
            points[kept, :, 0] = chosen[:, 0:1] - 1 + side[:, 0:1] * marks[:, 0:5]
            points[kept, :, 1] = chosen[:, 1:2] - 1 + side[:, 1:2] * marks[:, 5:10]
            scores[kept] = prob
        return points, scores

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
    def _to_detection(face: np.ndarray, sx: float, sy: float) -> Detection:
        """Turn a row ``[x1, y1, x2, y2, score, 5 x, 5 y]`` into a Detection in original pixels."""
        v = face.tolist()
        box = (v[0] / sx, v[1] / sy, v[2] / sx, v[3] / sy)
        landmarks = tuple((v[5 + k] / sx, v[10 + k] / sy) for k in range(5))
        return Detection(box=box, score=v[4], landmarks=landmarks)

    def _detect_batch(self, images: np.ndarray, min_face_size: float, thresholds: tuple[float, float, float], factor: float) -> list[np.ndarray]:
        """Run the cascade on normalised same-sized images ``(B, 3, H, W)``.

        Returns, per image, an array ``(K, 15)`` of ``[x1, y1, x2, y2, score, 5 x, 5 y]`` rows
        sorted by score descending.
        """
        empty = [np.zeros((0, 15), dtype=np.float32) for _ in range(len(images))]
        boxes, image_idx = self._stage_pnet(images, min_face_size, thresholds[0], factor)
        logger.debug("P-Net kept %d candidates", len(boxes))

        # Stage 2: R-Net on 24x24 crops.
        crops, valid = _crop_and_resize(images, image_idx, boxes, 24)
        boxes, image_idx = boxes[valid], image_idx[valid]
        if len(boxes) == 0:
            return empty
        scores, offsets = self._run_chunked("rnet", crops)
        passed = scores > thresholds[1]
        boxes, scores, image_idx, offsets = boxes[passed], scores[passed], image_idx[passed], offsets[passed]
        keep = nms(boxes, scores, 0.7, image_idx)
        boxes, image_idx = _square(_regress(boxes[keep], offsets[keep])), image_idx[keep]
        logger.debug("R-Net kept %d candidates", len(boxes))

        # Stage 3: O-Net on 48x48 crops; landmarks are placed relative to the input box.
        crops, valid = _crop_and_resize(images, image_idx, boxes, 48)
        boxes, image_idx = boxes[valid], image_idx[valid]
        if len(boxes) == 0:
            return empty
        scores, offsets, marks = self._run_chunked("onet", crops)
        passed = scores > thresholds[2]
        boxes, scores, image_idx, offsets, marks = boxes[passed], scores[passed], image_idx[passed], offsets[passed], marks[passed]
        wh = boxes[:, 2:4] - boxes[:, 0:2] + 1
        xs = boxes[:, 0:1] - 1 + wh[:, 0:1] * marks[:, 0:5]
        ys = boxes[:, 1:2] - 1 + wh[:, 1:2] * marks[:, 5:10]
        rows = np.concatenate([_regress(boxes, offsets), scores[:, None], xs, ys], axis=1).astype(np.float32)
        logger.debug("O-Net kept %d candidates", len(rows))
        out = []
        for i in range(len(images)):
            mine = rows[image_idx == i]
            out.append(mine[nms(mine[:, :4], mine[:, 4], 0.7, minimum=True)])
        return out

    def _stage_pnet(self, images: np.ndarray, min_face_size: float, threshold: float, factor: float) -> tuple[np.ndarray, np.ndarray]:
        """Scan the image pyramid with P-Net; return calibrated square boxes and their image indices."""
        height, width = images.shape[2:]
        all_boxes, all_scores, all_offsets, all_idx = [], [], [], []
        scales = _pyramid_scales(height, width, min_face_size, factor)
        levels = _area_resize(images, [(int(height * scale + 1), int(width * scale + 1)) for scale in scales])
        for scale, level in zip(scales, levels, strict=True):
            prob, offsets = self.runners["pnet"](level)
            idx, ys, xs = np.nonzero(prob >= threshold)
            cells = np.stack([xs, ys], axis=1).astype(np.float32)
            boxes = np.concatenate([np.floor((_PNET_STRIDE * cells + 1) / scale), np.floor((_PNET_STRIDE * cells + _PNET_CELL) / scale)], axis=1)
            scores = prob[idx, ys, xs]
            keep = nms(boxes, scores, 0.5, idx)
            all_boxes.append(boxes[keep])
            all_scores.append(scores[keep])
            all_offsets.append(offsets.transpose(0, 2, 3, 1)[idx, ys, xs][keep])
            all_idx.append(idx[keep])
        if not all_boxes:
            return np.zeros((0, 4), dtype=np.float32), np.zeros(0, dtype=np.int64)
        boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
        offsets, idx = np.concatenate(all_offsets), np.concatenate(all_idx)
        keep = nms(boxes, scores, 0.7, idx)
        return _square(_regress(boxes[keep], offsets[keep], plus_one=False)), idx[keep]

    def _run_chunked(self, net: str, crops: np.ndarray) -> tuple[np.ndarray, ...]:
        """Run ``net`` on (non-empty) crops in chunks of ``_NET_BATCH``; concatenate the outputs."""
        parts = [self.runners[net](np.ascontiguousarray(crops[i : i + _NET_BATCH])) for i in range(0, len(crops), _NET_BATCH)]
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))

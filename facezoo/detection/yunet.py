"""YuNet face detector: one single-shot network with five landmarks, decoded in numpy.

Wu, Peng and Yu, "YuNet: A Tiny Millisecond-level Face Detector" (Machine Intelligence Research,
2023); the authors' YuNet-n weights (Apache-2.0, ``ShiqiYu/libfacedetection.train``) ship in
``weights/``: their ONNX export, run on ONNX Runtime, and the same weights as safetensors for
facezoo's PyTorch module (:mod:`facezoo.detection.yunet_net`) when ONNX Runtime is not installed.
Everything around the network (resizing, padding, decoding, non-maximum suppression) is numpy,
the same for both runtimes.

Each image is resized before detection so that its longer side is at most ``max_side`` (large
photos: faces stay far above the network's smallest) and at least ``min_side`` (tiny crops such
as FER2013's 48 px faces, which the network, trained on faces up to a few hundred pixels in
640 px images, finds only when enlarged), then padded at the bottom and right to a multiple of 32.

Example:
    >>> import numpy as np
    >>> from facezoo.detection import YuNet
    >>> detector = YuNet.from_pretrained(runtime="torch")
    >>> detector.detect([np.zeros((240, 320, 3), dtype=np.uint8)])
    [[]]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from facezoo.detection.base import Detection, FaceDetector
from facezoo.detection.boxes import as_rgb, nms
from facezoo.errors import ConfigError, needs_torch

__all__ = ["ONNX_PATH", "STRIDES", "WEIGHTS_PATH", "YuNet"]

#: The authors' weights converted to safetensors, and their ONNX export, shipped with the package.
WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "yunet_n.safetensors"
ONNX_PATH = WEIGHTS_PATH.with_suffix(".onnx")
#: Strides of the three feature levels; the twelve outputs are cls, obj, bbox, kps per level.
STRIDES = (8, 16, 32)

Runner = Callable[[np.ndarray], tuple]
#: ``(image, boxes)`` → five points ``(K, 5, 2)`` and a score ``(K,)`` per box: a second opinion on the landmarks.
LandmarkRefiner = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def onnx_runner(path: str | Path = ONNX_PATH, threads: int | None = None) -> Runner:
    """An ONNX Runtime session of the YuNet export as a runner (float32 NCHW in, twelve arrays out)."""
    from .._onnx import session

    sess = session(path, threads)
    name = sess.get_inputs()[0].name
    return lambda x: tuple(sess.run(None, {name: x}))


def decode(outputs: Sequence[np.ndarray], index: int, width: int, threshold: float) -> np.ndarray:
    """Rows ``[x1, y1, x2, y2, score, 5 x, 5 y]`` of image ``index``'s cells scoring ``threshold``
    or more, in the coordinates of the network's (padded) input of ``width`` pixels.

    The score is the geometric mean of the class and objectness probabilities; a cell's box centre
    and landmarks are offsets from its corner in units of the stride, its width and height the
    exponent of the prediction times the stride (as OpenCV's ``FaceDetectorYN`` decodes them).
    """
    rows = []
    levels = len(STRIDES)
    for level, stride in enumerate(STRIDES):
        cls, obj = outputs[level][index, :, 0], outputs[levels + level][index, :, 0]
        score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        keep = np.flatnonzero(score >= threshold)
        if keep.size == 0:
            continue
        bbox, kps = (
            outputs[2 * levels + level][index, keep],
            outputs[3 * levels + level][index, keep],
        )
        col, row = (
            (keep % (width // stride)).astype(np.float32),
            (keep // (width // stride)).astype(np.float32),
        )
        cx, cy = (col + bbox[:, 0]) * stride, (row + bbox[:, 1]) * stride
        w, h = np.exp(bbox[:, 2]) * stride, np.exp(bbox[:, 3]) * stride
        xs = (col[:, None] + kps[:, 0::2]) * stride
        ys = (row[:, None] + kps[:, 1::2]) * stride
        rows.append(np.column_stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score[keep], xs, ys]))
    return np.concatenate(rows) if rows else np.zeros((0, 15), np.float32)


class YuNet(FaceDetector):
    """YuNet-n face detector with five landmarks.

    Args:
        runner: a function from a float32 BGR 0–255 ``N×3×H×W`` batch (H, W multiples of 32) to
            the network's twelve outputs; :meth:`from_pretrained` builds it for ONNX Runtime or
            PyTorch.
        max_side: images whose longer side exceeds this are downscaled to it before detection
            (results are mapped back to the original coordinates).
        min_side: images whose longer side is below this are upscaled to it.
        score_threshold: faces scoring less are dropped before non-maximum suppression.
        nms_threshold: boxes overlapping a better one by more than this IoU are dropped.
        image_batch_size: at most this many images of one (resized) size share a forward pass.
        refiner: places the five landmarks of each face found, in the original image, where it
            scores the face at least ``refine_score`` and agrees with YuNet on the face's
            orientation (YuNet's own landmarks are kept elsewhere).
            :meth:`from_pretrained` uses MTCNN's O-Net (:meth:`MTCNN.landmarks`): on the P1 test
            frames its points lie 0.048 of the eye distance from the annotations, YuNet's 0.085
            (``benchmarks/detectors.py --landmarks``), and the shipped models learnt from faces
            aligned on O-Net's points.

    Example:
        >>> import numpy as np
        >>> detector = YuNet.from_pretrained(runtime="torch", max_side=640)
        >>> detector.max_side, detector.detect([np.full((480, 640, 3), 128, dtype=np.uint8)])
        (640, [[]])
    """

    name = "yunet"
    revision = "yunet_n, onet landmarks"

    def __init__(
        self,
        runner: Runner,
        *,
        max_side: int = 960,
        min_side: int = 160,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.45,
        image_batch_size: int = 8,
        refiner: LandmarkRefiner | None = None,
        refine_score: float = 0.5,
        runtime: str = "onnx",
    ) -> None:
        if not 32 <= min_side <= max_side or image_batch_size < 1 or not 0 <= score_threshold <= 1 or not 0 < nms_threshold <= 1:
            raise ConfigError("YuNet needs 32 <= min_side <= max_side, image_batch_size >= 1, 0 <= score_threshold <= 1 and 0 < nms_threshold <= 1")
        self.runner, self.runtime = runner, runtime
        self.max_side, self.min_side = max_side, min_side
        self.score_threshold, self.nms_threshold, self.image_batch_size = score_threshold, nms_threshold, image_batch_size
        self.refiner, self.refine_score = refiner, refine_score

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | None = None,
        *,
        runtime: str = "onnx",
        device: str = "cpu",
        threads: int | None = None,
        refine_landmarks: bool = True,
        **settings,
    ) -> YuNet:
        """The detector with the shipped weights on ``runtime`` ``"onnx"`` (the authors' export, or
        the ONNX file ``path``) or ``"torch"`` (safetensors, on ``device``), its landmarks refined
        by MTCNN's O-Net on the same runtime unless ``refine_landmarks=False``; ``settings`` are
        :class:`YuNet`'s keyword arguments.

        Example:
            >>> YuNet.from_pretrained(runtime="torch", score_threshold=0.8).score_threshold
            0.8
        """
        refiner = None
        if refine_landmarks:
            from .mtcnn import MTCNN

            refiner = MTCNN.from_pretrained(runtime=runtime, device=device, threads=threads).landmarks
        if runtime == "onnx":
            return cls(onnx_runner(path or ONNX_PATH, threads), runtime=runtime, refiner=refiner, **settings)
        with needs_torch("YuNet on torch (runtime='torch'; runtime='onnx' needs no torch)"):
            from .yunet_net import YuNetNet

        return cls(YuNetNet.from_pretrained(path, device).runner(), runtime=runtime, refiner=refiner, **settings)

    def detect(self, images: Sequence[np.ndarray], *, score_threshold: float | None = None) -> list[list[Detection]]:
        """Detect faces in a list of RGB ``HxWx3`` uint8 images (sizes may differ).

        Args:
            images: the images; grayscale ``HxW`` arrays are accepted too.
            score_threshold: overrides the detector's ``score_threshold`` for this call.

        Returns:
            One list per image of :class:`Detection` in original-image coordinates, best score
            first. Images smaller than 8 px on a side give an empty list.

        Example:
            >>> import numpy as np
            >>> YuNet.from_pretrained(runtime="torch").detect([np.zeros((4, 4, 3), np.uint8)])
            [[]]
        """
        if isinstance(images, np.ndarray) and images.ndim != 4:
            raise TypeError("detect() takes a list of images; wrap a single image as [image]")
        threshold = self.score_threshold if score_threshold is None else score_threshold
        results: list[list[Detection]] = [[] for _ in images]
        originals: dict[int, np.ndarray] = {}
        groups: dict[tuple[int, int], list[tuple[int, np.ndarray, float, float]]] = defaultdict(list)
        for index, image in enumerate(images):
            rgb = as_rgb(image)
            if min(rgb.shape[:2]) < 8:
                continue
            originals[index] = rgb
            resized, sx, sy = self._resize(rgb)
            groups[resized.shape[:2]].append((index, resized, sx, sy))

        for (height, width), members in groups.items():
            padded_h, padded_w = -(-height // 32) * 32, -(-width // 32) * 32
            for start in range(0, len(members), self.image_batch_size):
                chunk = members[start : start + self.image_batch_size]
                batch = np.zeros((len(chunk), 3, padded_h, padded_w), np.float32)
                for slot, (_, rgb, _, _) in enumerate(chunk):
                    batch[slot, :, :height, :width] = rgb[:, :, ::-1].transpose(2, 0, 1)
                outputs = self.runner(batch)
                for slot, (index, _, sx, sy) in enumerate(chunk):
                    faces = decode(outputs, slot, padded_w, threshold)
                    faces = self._to_original(faces[nms(faces[:, :4], faces[:, 4], self.nms_threshold)], sx, sy, height, width)
                    if self.refiner is not None and len(faces):
                        self._refine(originals[index], faces)
                    results[index] = [Detection(box=tuple(f[:4]), score=f[4], landmarks=tuple(zip(f[5:10], f[10:15], strict=True))) for f in faces.tolist()]
        return results

    def _resize(self, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Resize so the longer side lies in ``[min_side, max_side]``; return the image and x/y scales."""
        height, width = image.shape[:2]
        longer = max(height, width)
        target = min(max(longer, self.min_side), self.max_side)
        if target == longer:
            return image, 1.0, 1.0
        ratio = target / longer
        new_w, new_h = max(1, round(width * ratio)), max(1, round(height * ratio))
        resized = Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR)  # antialiased when shrinking
        return np.asarray(resized), new_w / width, new_h / height

    def _refine(self, image: np.ndarray, faces: np.ndarray) -> None:
        """Move each face's landmarks (in place) to the refiner's where it scores the face at least
        ``refine_score`` and agrees on the face's orientation and size: its eye line within 15° of
        YuNet's and its eye distance within 0.8–1.25× (on P1's training frames 99 % of faces
        agree so; faces turned sideways or upside down, which O-Net was not trained on, do not)."""
        points, scores = self.refiner(image, faces[:, :4])
        own = np.stack([faces[:, 5:10], faces[:, 10:15]], axis=2)
        mine, theirs = own[:, 1] - own[:, 0], points[:, 1] - points[:, 0]
        turn = np.degrees(np.arctan2(theirs[:, 1], theirs[:, 0]) - np.arctan2(mine[:, 1], mine[:, 0]))
        turn = np.abs((turn + 180) % 360 - 180)
        ratio = np.linalg.norm(theirs, axis=1) / np.maximum(np.linalg.norm(mine, axis=1), 1e-6)
        with np.errstate(invalid="ignore"):  # NaN points of boxes outside the image never agree
            agree = (scores >= self.refine_score) & (turn <= 15) & (ratio >= 0.8) & (ratio <= 1.25)
        faces[agree, 5:10], faces[agree, 10:15] = points[agree, :, 0], points[agree, :, 1]

    @staticmethod
    def _to_original(faces: np.ndarray, sx: float, sy: float, height: int, width: int) -> np.ndarray:
        """Decoded rows in original-image pixels (float64), boxes clipped to the image."""
        faces = faces.astype(np.float64)
        faces[:, [0, 2]] = np.clip(faces[:, [0, 2]], 0, width)
        faces[:, [1, 3]] = np.clip(faces[:, [1, 3]], 0, height)
        faces[:, [0, 2, *range(5, 10)]] /= sx
        faces[:, [1, 3, *range(10, 15)]] /= sy
        return faces

"""The one code path that prepares faces for training, evaluation and inference.

A :class:`FaceTransform` is derived from a model's :class:`~facezoo.config.Preprocess`: callers
never retype sizes or mean/std. It crops a face (whole image, detection box or 5-point
alignment, on the detector's points or on dlib's 5-point shape predictor's), resizes it, optionally
makes it gray, and normalises it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .config import Preprocess
from .detection import align_face, crop_box
from .detection.shape_predictor import ShapePredictor
from .results import Face

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class FaceCrop:
    """A face cut out of an input image at the model's input size.

    ``crop_to_image`` is the 2×3 affine matrix mapping crop pixel coordinates back to the input
    image, so that geometric outputs (keypoints) are reported in the image the user gave.
    """

    image: Image.Image
    crop_to_image: np.ndarray
    face: Face | None = None
    source: int = 0

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Map ``N×2`` crop coordinates to input-image coordinates."""
        return points @ self.crop_to_image[:, :2].T + self.crop_to_image[:, 2]


class FaceTransform:
    """Prepare faces as a model expects them.

    Example:
        >>> from facezoo.config import Preprocess
        >>> transform = FaceTransform(Preprocess(input_size=(64, 64)))
        >>> transform(Image.new("RGB", (100, 80))).shape
        (3, 64, 64)
    """

    def __init__(self, preprocess: Preprocess):
        self.preprocess = preprocess
        self.size = preprocess.input_size
        self._resample = _RESAMPLE[preprocess.interpolation]
        self._mean = (np.asarray(preprocess.mean, dtype=np.float32) * 255.0).reshape(1, 3, 1, 1)
        self._inv_std = (1.0 / (np.asarray(preprocess.std, dtype=np.float32) * 255.0)).reshape(1, 3, 1, 1)

    def __repr__(self) -> str:
        return f"FaceTransform({self.preprocess})"

    @property
    def framing(self) -> tuple:
        """What decides the crops (not their normalisation): models with equal framings can share
        the faces one of them cut out.

        Example:
            >>> FaceTransform(Preprocess()).framing == FaceTransform(Preprocess(mean=(0.5, 0.5, 0.5))).framing
            True
        """
        p = self.preprocess
        return (p.crop, p.template, p.landmarks, p.scale, p.margin, p.input_size, p.interpolation, p.grayscale)

    def crop(self, image: Image.Image, face: Face | None = None, source: int = 0) -> FaceCrop:
        """Cut ``face`` (or the whole image when ``None``) out of an RGB image."""
        return self._cut(image, [face], source)[0]

    def crops(self, images: list[Image.Image], faces: list[list[Face | None]]) -> list[FaceCrop]:
        """:meth:`crop` of every face of every image (``faces``: one list per image), in order."""
        return [cut for i, image in enumerate(images) for cut in self._cut(image, faces[i], i)]

    def _cut(self, image: Image.Image, faces: list[Face | None], source: int) -> list[FaceCrop]:
        """The crops of ``faces`` of one image: the points they are aligned on (dlib's, with
        ``landmarks="dlib-5"``, found for all of the image's faces at once), then each cut."""
        height, width = self.size
        pre = self.preprocess
        points: list = [face.landmarks if face is not None else None for face in faces]
        if pre.crop == "align" and pre.landmarks == "dlib-5" and any(p is not None for p in points):
            found = [p for p in points if p is not None]
            shapes = iter(ShapePredictor.pretrained().shapes(np.asarray(image), found))
            points = [next(shapes) if p is not None else None for p in points]
        cuts = []
        for face, marks in zip(faces, points, strict=True):
            if face is None:
                crop = image.resize((width, height), self._resample) if image.size != (width, height) else image
                sx, sy = image.width / width, image.height / height  # pixel centres at integers, as everywhere
                matrix = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])
            else:
                if pre.crop == "align":
                    array, matrix = align_face(image, marks, output_size=(height, width), scale=pre.scale, template=pre.template)
                else:
                    array, matrix = crop_box(image, face.box, output_size=(height, width), margin=pre.margin)
                crop = Image.fromarray(array)
            cut = FaceCrop(image=crop, crop_to_image=np.asarray(matrix, dtype=np.float64), face=face, source=source)
            cuts.append(self.grayed(cut) if pre.grayscale else cut)
        return cuts

    def in_color(self) -> FaceTransform:
        """This transform without ``grayscale``: its crops made gray are this one's (a gray model
        reuses the colour crops of a model that frames faces alike)."""
        return FaceTransform(dataclasses.replace(self.preprocess, grayscale=False))

    def grayed(self, crop: FaceCrop) -> FaceCrop:
        """``crop`` made gray (3 identical channels), as this transform's crops are when ``grayscale``."""
        return dataclasses.replace(crop, image=crop.image.convert("L").convert("RGB"))

    def to_array(self, crops: list[FaceCrop] | list[Image.Image]) -> np.ndarray:
        """Stack crops into a normalised float32 ``N×3×H×W`` array."""
        return self.normalize(np.stack([np.asarray(c.image if isinstance(c, FaceCrop) else c) for c in crops]))

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``N×H×W×3`` faces at the input size → normalised float32 ``N×3×H×W``."""
        return np.ascontiguousarray((np.asarray(images).transpose(0, 3, 1, 2).astype(np.float32) - self._mean) * self._inv_std)

    def normalize_torch(self, images):
        """As :meth:`normalize` for a uint8 torch tensor, in torch (training); channels-last memory."""
        import torch

        mean, inv_std = torch.from_numpy(self._mean).to(images.device), torch.from_numpy(self._inv_std).to(images.device)
        return ((images.permute(0, 3, 1, 2).float() - mean) * inv_std).contiguous(memory_format=torch.channels_last)

    def __call__(self, image: Image.Image) -> np.ndarray:
        """A face image (the whole image is the face) → normalised float32 ``3×H×W`` array."""
        return self.to_array([self.crop(image)])[0]

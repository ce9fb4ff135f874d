"""Face alignment and cropping with numpy and Pillow only.

All points are in pixel-index coordinates (pixel centres at integers, as in MTCNN's landmarks
and the ArcFace template); boxes are ``(x1, y1, x2, y2)`` edge coordinates. Every function that
produces a crop also returns the 2x3 affine matrix mapping crop pixels back to image pixels, so
keypoints predicted on the crop can be mapped back with :func:`apply_affine`.

Example:
    >>> import numpy as np
    >>> image = np.zeros((200, 200, 3), np.uint8)
    >>> crop, crop_to_image = crop_box(image, (50, 50, 150, 150), output_size=(64, 64), margin=0.0)
    >>> crop.shape
    (64, 64, 3)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from facezoo.errors import InputError

__all__ = ["ARCFACE_TEMPLATE_112", "DLIB_CHIP_TEMPLATE_150", "DLIB_TEMPLATE_150", "TEMPLATES", "align_face", "apply_affine", "crop_box", "estimate_similarity"]


#: Standard five-point template (eyes, nose tip, mouth corners) for a 112x112 ArcFace crop.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

#: Where facezoo's five landmarks (YuNet with O-Net points) lie, on average, in dlib's 150x150
#: face chip (``get_face_chip(..., padding=0.25)``, what dlib's face-recognition ResNet learnt
#: from): measured on 300 CelebA-train and 300 SCUT-FBP5500-train faces (546 kept; never LFW) by
#: ``facezoo_identity/fit_dlib_framing.py`` as of commit 4afa143. ``identity/dlib_resnet.v1`` was
#: framed by it until it aligned on dlib's own points (``"dlib-chip"``); models that name it still load.
DLIB_TEMPLATE_150 = np.array(
    [
        [49.4, 47.1],
        [103.6, 46.9],
        [75.8, 80.8],
        [52.7, 104.0],
        [100.4, 103.5],
    ],
    dtype=np.float64,
)

#: Where dlib's own five points (its shape predictor's: outer and inner corner of the left eye, then
#: of the right eye, base of the nose) go in its 150x150 face chip: ``get_face_chip_details``'s mean
#: face at ``padding=0.25``, ``(0.25 + p) / 1.5 * 150`` (dlib/image_transforms/interpolation.h).
DLIB_CHIP_TEMPLATE_150 = (
    0.25
    + np.array(
        [
            [0.8595674595992, 0.2134981538014],
            [0.6460604764104, 0.2289674387677],
            [0.1205750620789, 0.2137274526848],
            [0.3340850613712, 0.2290642403242],
            [0.4901123135679, 0.6277975316475],
        ],
        dtype=np.float64,
    )
) / 1.5 * 150.0

#: Alignment templates by name (``Preprocess.template``): the five points and the crop side they
#: are for (``"dlib-chip"`` places dlib's points, ``Preprocess.landmarks="dlib-5"``; the others facezoo's).
TEMPLATES: dict[str, tuple[np.ndarray, float]] = {
    "arcface": (ARCFACE_TEMPLATE_112, 112.0),
    "dlib": (DLIB_TEMPLATE_150, 150.0),
    "dlib-chip": (DLIB_CHIP_TEMPLATE_150, 150.0),
}


def apply_affine(points: np.ndarray | Sequence[Sequence[float]], matrix: np.ndarray) -> np.ndarray:
    """Map ``N x 2`` points through a ``2 x 3`` affine matrix.

    Example:
        >>> apply_affine([[1.0, 2.0]], np.array([[2.0, 0, 10], [0, 2.0, 20]]))
        array([[12., 24.]])
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    m = np.asarray(matrix, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def _invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a ``2 x 3`` affine matrix."""
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def estimate_similarity(
    src_points: np.ndarray | Sequence[Sequence[float]], dst_points: np.ndarray | Sequence[Sequence[float]]
) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src onto dst.

    Umeyama (1991) closed form; never returns a reflection. The result ``M`` (2x3) satisfies
    ``apply_affine(src, M) ~= dst``.

    Example:
        >>> src = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        >>> np.round(estimate_similarity(src, 2 * src + 5), 6) + 0.0
        array([[2., 0., 5.],
               [0., 2., 5.]])
    """
    src = np.asarray(src_points, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst_points, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise InputError(f"need matching point sets of at least 2 points, got {src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c**2).sum() / len(src)
    if src_var < 1e-12:
        raise InputError("the source points are all identical: landmarks that span no area cannot be aligned")
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    signs = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        signs[-1] = -1.0  # flip the weakest axis instead of reflecting
    rotation = u @ np.diag(signs) @ vt
    scale = float((s * signs).sum() / src_var)
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def _as_pil(image: np.ndarray | Image.Image) -> Image.Image:
    return image if isinstance(image, Image.Image) else Image.fromarray(image)


def _warp(image: np.ndarray | Image.Image, crop_to_image: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """Sample ``image`` on the crop grid given by ``crop_to_image`` (bilinear, zeros outside).

    When the crop is much smaller than the image region, the image is first box-reduced by an
    integer factor so that bilinear sampling does not alias. Only the region the crop samples is
    reduced and warped (cut at multiples of the factor, so the pixels equal a warp of the whole
    image): the cost depends on the face, not on the photo.
    """
    height, width = output_size
    pil = _as_pil(image)
    linear = crop_to_image[:, :2]
    # Pixel-index -> PIL's continuous coordinates (pixel centres at +0.5).
    offset = crop_to_image[:, 2] + 0.5 - linear @ np.array([0.5, 0.5])
    step = float(np.sqrt(abs(np.linalg.det(linear))))  # image pixels per crop pixel
    factor = int(step // 2) if step >= 4 else 1
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], dtype=np.float64) @ linear.T + offset
    low = np.floor(corners.min(axis=0)) - 2 * factor
    high = np.ceil(corners.max(axis=0)) + 2 * factor
    x0, y0 = (max(0, int(v) // factor * factor) for v in low)
    x1, y1 = min(pil.width, int(high[0])), min(pil.height, int(high[1]))
    if x0 >= x1 or y0 >= y1:  # the crop lies wholly outside the image
        return np.asarray(Image.new(pil.mode, (width, height)))
    pil = pil.crop((x0, y0, x1, y1))
    offset = offset - np.array([x0, y0])
    if factor > 1:
        pil = pil.reduce(factor)
        linear, offset = linear / factor, offset / factor
    coeffs = (linear[0, 0], linear[0, 1], offset[0], linear[1, 0], linear[1, 1], offset[1])
    out = pil.transform((width, height), Image.Transform.AFFINE, data=coeffs, resample=Image.Resampling.BILINEAR)
    return np.asarray(out)


def align_face(
    image: np.ndarray | Image.Image,
    landmarks: np.ndarray | Sequence[Sequence[float]],
    output_size: tuple[int, int] = (112, 112),
    scale: float = 1.0,
    template: str = "arcface",
) -> tuple[np.ndarray, np.ndarray]:
    """Warp a face so its five landmarks best match a template of :data:`TEMPLATES`
    (:data:`ARCFACE_TEMPLATE_112` by default, ``"dlib"``: :data:`DLIB_TEMPLATE_150`, or
    ``"dlib-chip"``: :data:`DLIB_CHIP_TEMPLATE_150`, for dlib's own five points).

    The template is scaled per axis to ``output_size`` = ``(height, width)``; ``scale`` < 1
    shrinks it about the crop centre, so the crop shows more around the face (the whole jaw and
    forehead at about 0.75).

    Returns:
        The aligned crop (``H x W x C`` uint8) and the 2x3 matrix mapping crop pixel
        coordinates back to image coordinates.

    Example:
        >>> image = np.zeros((200, 200, 3), np.uint8)
        >>> crop, crop_to_image = align_face(image, ARCFACE_TEMPLATE_112 + 40)
        >>> crop.shape, (np.round(crop_to_image, 3) + 0.0).tolist()
        ((112, 112, 3), [[1.0, 0.0, 40.0], [0.0, 1.0, 40.0]])
    """
    height, width = output_size
    points, side = TEMPLATES[template]
    target = ((points - side / 2) * scale + side / 2) * np.array([width / side, height / side])
    image_to_crop = estimate_similarity(landmarks, target)
    crop_to_image = _invert_affine(image_to_crop)
    return _warp(image, crop_to_image, output_size), crop_to_image


def crop_box(
    image: np.ndarray | Image.Image,
    box: Sequence[float],
    output_size: tuple[int, int] = (112, 112),
    margin: float = 0.2,
    square: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Crop a box (grown by ``margin`` of its size, optionally made square) and resize it.

    The box's width and height are multiplied by ``1 + margin`` about its centre; with
    ``square`` both become the larger of the two. Regions outside the image are zero.

    Returns:
        The crop (``H x W x C`` uint8, ``output_size`` = ``(height, width)``) and the 2x3
        matrix mapping crop pixel coordinates back to image coordinates.

    Example:
        >>> image = np.zeros((100, 100, 3), np.uint8)
        >>> crop, m = crop_box(image, (20, 30, 60, 70), output_size=(80, 80), margin=0.0)
        >>> apply_affine([[-0.5, -0.5]], m) + 0.5  # top-left edge of the crop
        array([[20., 30.]])
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    bw, bh = (x2 - x1) * (1 + margin), (y2 - y1) * (1 + margin)
    if square:
        bw = bh = max(bw, bh)
    if bw <= 0 or bh <= 0:
        raise InputError(f"empty box {box}: a face box needs x2 > x1 and y2 > y1")
    height, width = output_size
    sx, sy = bw / width, bh / height
    left, top = cx - bw / 2, cy - bh / 2
    # Crop pixel u (centre u + 0.5 in edge coordinates) -> image edge coordinate left + (u + 0.5) * sx.
    crop_to_image = np.array([[sx, 0.0, left + 0.5 * sx - 0.5], [0.0, sy, top + 0.5 * sy - 0.5]])

    # Integer crop first (Pillow pads with zeros outside the image), then an antialiased resize
    # of the exact fractional region.
    x0, y0 = int(np.floor(left)), int(np.floor(top))
    x3, y3 = int(np.ceil(left + bw)), int(np.ceil(top + bh))
    region = _as_pil(image).crop((x0, y0, x3, y3))
    out = region.resize(
        (width, height),
        Image.Resampling.BILINEAR,
        box=(left - x0, top - y0, left - x0 + bw, top - y0 + bh),
    )
    return np.asarray(out), crop_to_image

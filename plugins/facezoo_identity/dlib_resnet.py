"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) as a torch module.

The network of dlib's ``examples/dnn_face_recognition_ex.cpp`` (Davis E. King): a 7×7 stem, 3×3
residual blocks at 32, 64, 128, 256 and 256 channels, the downsampling ones with a 2×2 average
pool on the shortcut, then a global average pool. dlib's ``affine`` layers (its batch norm, folded
for inference) are folded into the convolution before them by ``convert_dlib.py``, so a block is
two biased convolutions. The final 256→128 projection without bias is the identity head's ``fc``.

Two details of dlib that the port keeps, because its outputs depend on them:

* a convolution with stride 2 has no padding (dlib's default), so the block branch of a
  downsampling block can come out smaller than the pooled shortcut (3×3 against 4×4 at 256
  channels);
* adding two tensors of different shapes zero-pads the smaller one in channels *and* space, at
  the end (dlib's ``add_prev``): the shortcut's missing channels and the branch's missing last
  row and column are zeros.

Input: a 150×150 RGB chip, ``(x - (122.782, 117.001, 104.298)) / 256`` (in facezoo's terms,
mean ``(122.782, 117.001, 104.298) / 255`` and std ``256 / 255``).

Example:
    >>> import torch
    >>> net = DlibResNet().eval()
    >>> net(torch.zeros(2, 3, 150, 150)).shape
    torch.Size([2, 256])
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: dlib's per-channel input means (RGB, 0–255) and its divisor.
MEAN_RGB, SCALE = (122.782, 117.001, 104.298), 256.0
#: ``(channels, blocks, first block downsamples)`` from the input to the output.
LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` where the smaller is zero-padded at the end of channels, rows and columns (dlib's add)."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=False)]

    def pad(t: torch.Tensor) -> torch.Tensor:
        c, h, w = t.shape[1:]
        if (c, h, w) == tuple(shape):
            return t
        return F.pad(t, (0, shape[2] - w, 0, shape[1] - h, 0, shape[0] - c))

    return pad(a) + pad(b)


class DlibBlock(nn.Module):
    """Two 3×3 convolutions (dlib's affine folded in) and a shortcut; ``down`` halves the size."""

    def __init__(self, in_channels: int, channels: int, down: bool):
        super().__init__()
        self.down = down
        stride, padding = (2, 0) if down else (1, 1)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, padding)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.conv2(F.relu(self.conv1(x)))
        if self.down:
            return F.relu(_add_padded(branch, F.avg_pool2d(x, 2, 2)))
        return F.relu(branch + x)


class DlibResNet(nn.Module):
    """dlib's face-recognition ResNet trunk: ``N×3×150×150`` → ``N×256`` (``pooled=False``: ``N×256×2×2``).

    A facezoo backbone (registered as ``dlib_resnet`` by the identity plugin through
    ``facezoo_register_backbones``); with the identity head's ``fc`` it gives dlib's 128-d
    descriptor. Weights: ``weights/dlib_resnet.v1/model.safetensors`` of the identity plugin
    (float16, made by ``convert_dlib.py``); faces framed as dlib frames them (its 5-point chip; :mod:`.fit_dlib_framing`).
    """

    num_features = 256

    def __init__(self, pooled: bool = True):
        super().__init__()
        self.pooled = pooled
        self.stem = nn.Conv2d(3, 32, 7, 2, 0)
        blocks, channels = [], 32
        for width, count, down in LEVELS:
            for i in range(count):
                blocks.append(DlibBlock(channels, width, down and i == 0))
                channels = width
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        x = self.blocks(x)
        return x.mean(dim=(2, 3)) if self.pooled else x


def build(input_size: tuple[int, int] | None = None, pooled: bool = True) -> DlibResNet:
    """The backbone factory the identity plugin registers (any input size; dlib's is 150×150)."""
    return DlibResNet(pooled=pooled)

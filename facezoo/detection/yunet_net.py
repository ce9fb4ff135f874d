"""YuNet's network in PyTorch: the runtime of :class:`facezoo.detection.YuNet` when ONNX Runtime is
not installed.

Wu, Peng and Yu, "YuNet: A Tiny Millisecond-level Face Detector" (Machine Intelligence Research,
2023). facezoo's own module, written from the published architecture (a depthwise-separable
backbone, a three-level top-down feature pyramid and a shared anchor-free head at strides 8, 16
and 32); its parameter names follow the authors' state dict, whose weights (Apache-2.0) were
converted once to ``weights/yunet_n.safetensors`` by :mod:`facezoo.detection.convert_yunet`. Its
outputs equal the authors' ONNX export's (``weights/yunet_n.onnx``) on the same input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F

from .yunet import STRIDES, WEIGHTS_PATH


class _PointwiseDepthwise(nn.Module):
    """1×1 convolution, 3×3 depthwise convolution, then (optionally) batch norm and ReLU."""

    def __init__(self, inputs: int, outputs: int, activate: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 1)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, groups=outputs)
        self.activate = activate
        if activate:
            self.bn = nn.BatchNorm2d(outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(x))
        return F.relu(self.bn(x)) if self.activate else x


class _Stem(nn.Module):
    """A strided 3×3 convolution with batch norm and ReLU, then one pointwise-depthwise unit."""

    def __init__(self, inputs: int, middle: int, outputs: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, middle, 3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(middle)
        self.conv2 = _PointwiseDepthwise(middle, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.bn1(self.conv1(x))))


class _Block(nn.Module):
    """Two pointwise-depthwise units."""

    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        self.conv1 = _PointwiseDepthwise(inputs, inputs)
        self.conv2 = _PointwiseDepthwise(inputs, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class _Backbone(nn.Module):
    """Six stages; max pooling after stages 0, 2, 3 and 4; stages 3, 4, 5 feed the pyramid."""

    POOL_AFTER = (0, 2, 3, 4)
    OUTPUTS = (3, 4, 5)

    def __init__(self) -> None:
        super().__init__()
        self.model0 = _Stem(3, 16, 16)
        self.model1 = _Block(16, 64)
        for i in range(2, 6):
            self.add_module(f"model{i}", _Block(64, 64))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for i in range(6):
            x = getattr(self, f"model{i}")(x)
            if i in self.OUTPUTS:
                features.append(x)
            if i in self.POOL_AFTER:
                x = F.max_pool2d(x, 2)
        return features


class _Neck(nn.Module):
    """Top-down pyramid: each coarser level, refined, is upsampled and added to the finer one."""

    def __init__(self) -> None:
        super().__init__()
        self.lateral_convs = nn.ModuleList(_PointwiseDepthwise(64, 64) for _ in STRIDES)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        features = list(features)
        for i in range(len(features) - 1, 0, -1):
            features[i] = self.lateral_convs[i](features[i])
            features[i - 1] = features[i - 1] + F.interpolate(features[i], scale_factor=2.0, mode="nearest")
        features[0] = self.lateral_convs[0](features[0])
        return features


class _Head(nn.Module):
    """Per level: a shared unit, then class, objectness, box and five-landmark predictions."""

    def __init__(self) -> None:
        super().__init__()
        levels = range(len(STRIDES))
        self.multi_level_share_convs = nn.ModuleList(nn.Sequential(_PointwiseDepthwise(64, 64)) for _ in levels)
        self.multi_level_cls = nn.ModuleList(_PointwiseDepthwise(64, 1, activate=False) for _ in levels)
        self.multi_level_obj = nn.ModuleList(_PointwiseDepthwise(64, 1, activate=False) for _ in levels)
        self.multi_level_bbox = nn.ModuleList(_PointwiseDepthwise(64, 4, activate=False) for _ in levels)
        self.multi_level_kps = nn.ModuleList(_PointwiseDepthwise(64, 10, activate=False) for _ in levels)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        def cells(
            x: torch.Tensor,
        ) -> torch.Tensor:  # N×C×h×w → N×(h·w)×C, row-major cells
            return x.permute(0, 2, 3, 1).flatten(1, 2)

        outputs: list[torch.Tensor] = []
        shared = [convs(f) for convs, f in zip(self.multi_level_share_convs, features, strict=True)]
        outputs += [cells(conv(f)).sigmoid() for conv, f in zip(self.multi_level_cls, shared, strict=True)]
        outputs += [cells(conv(f)).sigmoid() for conv, f in zip(self.multi_level_obj, shared, strict=True)]
        outputs += [cells(conv(f)) for conv, f in zip(self.multi_level_bbox, shared, strict=True)]
        outputs += [cells(conv(f)) for conv, f in zip(self.multi_level_kps, shared, strict=True)]
        return tuple(outputs)


class YuNetNet(nn.Module):
    """YuNet-n: BGR 0–255 ``N×3×H×W`` (H, W multiples of 32) → the twelve outputs of the ONNX
    export, in its order: ``cls``, ``obj``, ``bbox``, ``kps`` at strides 8, 16, 32.

    Example:
        >>> net = YuNetNet.from_pretrained()
        >>> [o.shape for o in net.runner()(np.zeros((1, 3, 64, 64), np.float32))][:3]
        [(1, 64, 1), (1, 16, 1), (1, 4, 1)]
    """

    def __init__(self) -> None:
        super().__init__()
        self.backbone = _Backbone()
        self.neck = _Neck()
        self.bbox_head = _Head()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.bbox_head(self.neck(self.backbone(x)))

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str = "cpu") -> YuNetNet:
        """The network with the shipped (or the given safetensors) weights, in eval mode."""
        net = cls()
        net.load_state_dict(load_file(str(path or WEIGHTS_PATH)), strict=True)
        return net.to(device).eval()

    def runner(self):
        """A function from a float32 numpy batch to the outputs as numpy arrays."""
        device = next(self.parameters()).device

        def run(x: np.ndarray) -> tuple[np.ndarray, ...]:
            with torch.inference_mode():
                return tuple(o.cpu().numpy() for o in self(torch.from_numpy(x).to(device)))

        return run

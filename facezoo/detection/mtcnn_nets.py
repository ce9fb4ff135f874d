"""MTCNN's three networks in PyTorch, their weights, and their export to ONNX.

The weights are facenet-pytorch's (MIT), converted once to ``weights/mtcnn.safetensors`` by
:mod:`facezoo.detection.convert_mtcnn`. :class:`facezoo.detection.MTCNN` runs the cascade around
them in numpy, with either these torch networks or their ONNX exports (shipped beside the weights).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from .mtcnn import WEIGHTS_PATH


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


class MTCNNNets(nn.Module):
    """P-Net, R-Net and O-Net with facezoo's key names (``pnet.*``, ``rnet.*``, ``onet.*``)."""

    def __init__(self) -> None:
        super().__init__()
        self.pnet, self.rnet, self.onet = _PNet(), _RNet(), _ONet()
        self.eval()

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str | torch.device = "cpu") -> MTCNNNets:
        """The networks with the shipped safetensors weights, loaded strictly (no pickle)."""
        nets = cls()
        nets.load_state_dict(load_file(str(path or WEIGHTS_PATH)), strict=True)
        return nets.to(device).eval()

    def runners(self) -> dict:
        """``{"pnet": f, "rnet": f, "onet": f}``: numpy float32 NCHW in, tuple of numpy arrays out."""
        device = self.pnet.conv1.weight.device

        def runner(net: nn.Module):
            @torch.inference_mode()
            def run(x: np.ndarray) -> tuple[np.ndarray, ...]:
                return tuple(t.float().cpu().numpy() for t in net(torch.from_numpy(x).to(device)))

            return run

        return {"pnet": runner(self.pnet), "rnet": runner(self.rnet), "onet": runner(self.onet)}

    def export_onnx(self, folder: str | Path | None = None) -> dict[str, Path]:
        """Write ``mtcnn-{pnet,rnet,onet}.onnx`` (opset 18; dynamic batch, and P-Net dynamic size)."""
        folder = Path(folder) if folder else WEIGHTS_PATH.parent
        shapes = {"pnet": (1, 3, 64, 80), "rnet": (2, 3, 24, 24), "onet": (2, 3, 48, 48)}
        outputs = {"pnet": ["prob", "offsets"], "rnet": ["prob", "offsets"], "onet": ["prob", "offsets", "landmarks"]}
        paths = {}
        for name, shape in shapes.items():
            dims = {0: torch.export.Dim("batch")}
            if name == "pnet":
                dims.update({2: torch.export.Dim("height", min=12), 3: torch.export.Dim("width", min=12)})
            paths[name] = folder / f"mtcnn-{name}.onnx"
            torch.onnx.export(
                getattr(self, name).cpu().eval(), (torch.zeros(shape),), str(paths[name]), input_names=["images"],
                output_names=outputs[name], dynamic_shapes={"x": dims}, opset_version=18, dynamo=True, external_data=False,
            )
        return paths

"""Convert the MTCNN weights of a facenet-pytorch wheel to facezoo's safetensors file.

Run once, offline, on a downloaded wheel (``pip download --no-deps facenet-pytorch``)::

    python -m facezoo.detection.convert_mtcnn /path/to/facenet_pytorch-2.6.0-py3-none-any.whl

The wheel's ``data/{pnet,rnet,onet}.pt`` state dicts are read with ``weights_only=True``, keys
are renamed to :class:`facezoo.detection.mtcnn_nets.MTCNNNets`'s names, and the first dense layer of
R-Net and O-Net has its input columns reordered: facenet-pytorch flattens feature maps in
(W, H, C) order (the original Caffe layout) while facezoo flattens in PyTorch's (C, H, W) order.
The result is checked by a strict ``load_state_dict`` before it is written.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from facezoo.detection.mtcnn import WEIGHTS_PATH
from facezoo.detection.mtcnn_nets import MTCNNNets

logger = logging.getLogger(__name__)

# facenet-pytorch name -> facezoo name, per network; unlisted keys keep their name.
_RENAME = {
    "pnet": {"conv4_1": "cls", "conv4_2": "box"},
    "rnet": {"dense4": "fc4", "dense5_1": "cls", "dense5_2": "box"},
    "onet": {"dense5": "fc5", "dense6_1": "cls", "dense6_2": "box", "dense6_3": "landmarks"},
}
# Dense layers fed by a flattened (C, 3, 3) feature map: facezoo name -> channel count C.
_FLATTENED_INPUT = {"rnet.fc4.weight": 64, "onet.fc5.weight": 128}


def _caffe_to_torch_flatten(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """Reorder a dense weight's input columns from (W, H, C) to (C, H, W) flatten order."""
    side = round((weight.shape[1] // channels) ** 0.5)
    return weight.reshape(weight.shape[0], side, side, channels).permute(0, 3, 2, 1).reshape(weight.shape[0], -1)


def convert(wheel: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read the three state dicts from ``wheel``; return facezoo tensors and file metadata.

    Example:
        >>> tensors, meta = convert(Path("facenet_pytorch-2.6.0-py3-none-any.whl"))  # doctest: +SKIP
        >>> sorted(tensors)[:2]  # doctest: +SKIP
        ['onet.box.bias', 'onet.box.weight']
    """
    data = wheel.read_bytes()
    tensors: dict[str, torch.Tensor] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for net, renames in _RENAME.items():
            raw = archive.read(f"facenet_pytorch/data/{net}.pt")
            state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
            for key, value in state.items():
                layer, param = key.split(".", 1)
                name = f"{net}.{renames.get(layer, layer)}.{param}"
                value = value.to(torch.float32)
                if name in _FLATTENED_INPUT:
                    value = _caffe_to_torch_flatten(value, _FLATTENED_INPUT[name])
                tensors[name] = value.contiguous()
    metadata = {
        "format": "facezoo-mtcnn-v1",
        "source_wheel": wheel.name,
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "source_files": "facenet_pytorch/data/pnet.pt, rnet.pt, onet.pt",
        "license": "MIT (facenet-pytorch, Copyright (c) 2019 Timothy Esler)",
        "paper": "Zhang et al., Joint Face Detection and Alignment Using Multitask Cascaded "
        "Convolutional Networks, IEEE SPL 23(10), 2016",
        "conversion": "keys renamed; rnet.fc4/onet.fc5 input columns reordered from (W,H,C) to (C,H,W)",
    }
    return tensors, metadata


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: convert a wheel and write the safetensors file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="path to a facenet_pytorch-*.whl")
    parser.add_argument("--output", type=Path, default=WEIGHTS_PATH, help="safetensors file to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    tensors, metadata = convert(args.wheel)
    MTCNNNets().load_state_dict(tensors, strict=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.output), metadata=metadata)
    logger.info(
        "wrote %s: %d tensors, %d parameters, %d bytes (source sha256 %s)",
        args.output,
        len(tensors),
        sum(t.numel() for t in tensors.values()),
        args.output.stat().st_size,
        metadata["source_sha256"],
    )


if __name__ == "__main__":
    main()

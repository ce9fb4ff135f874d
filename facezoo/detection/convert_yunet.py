"""Convert the authors' YuNet-n weights to facezoo's shipped files.

Run once, offline, on a copy of ``ShiqiYu/libfacedetection.train`` at commit
``0047ac24afb1a50a0c6105001c89d1b5b805dbf1`` (or the folder ``../shared/models/yunet`` that holds
its ``weights/yunet_n.pth``, ``onnx/yunet_n_dynamic.onnx`` and ``LICENSE``)::

    python -m facezoo.detection.convert_yunet ../shared/models/yunet

The ``.pth`` state dict is read with ``weights_only=True`` (never a plain pickle load), checked by a
strict ``load_state_dict`` into :class:`facezoo.detection.yunet_net.YuNetNet` and written as
safetensors with its values unchanged; the ONNX export is copied unchanged, and the licence is
written beside both as the Apache-2.0 licence requires.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from facezoo.detection.yunet import ONNX_PATH, WEIGHTS_PATH
from facezoo.detection.yunet_net import YuNetNet

logger = logging.getLogger(__name__)

SOURCE = "ShiqiYu/libfacedetection.train@0047ac24afb1a50a0c6105001c89d1b5b805dbf1"
LICENSE_PATH = WEIGHTS_PATH.with_name("LICENSE-yunet")


def _find(folder: Path, *names: str) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise SystemExit(f"{folder}: none of {', '.join(names)} found")


def convert(folder: Path) -> dict[str, torch.Tensor]:
    """The state dict of ``folder``'s ``yunet_n.pth``, checked against facezoo's module.

    Example:
        >>> sorted(convert(Path("../shared/models/yunet")))[:1]  # doctest: +SKIP
        ['backbone.model0.bn1.bias']
    """
    checkpoint = torch.load(
        _find(folder, "yunet_n.pth", "weights/yunet_n.pth"),
        map_location="cpu",
        weights_only=True,
    )
    state = checkpoint.get("state_dict", checkpoint)
    YuNetNet().load_state_dict(state, strict=True)
    return {name: tensor.contiguous() for name, tensor in state.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "source",
        type=Path,
        help="the folder with yunet_n.pth, yunet_n_dynamic.onnx and LICENSE",
    )
    args = parser.parse_args(argv)
    onnx = _find(args.source, "yunet_n_dynamic.onnx", "onnx/yunet_n_dynamic.onnx")
    save_file(
        convert(args.source),
        str(WEIGHTS_PATH),
        metadata={"source": SOURCE, "licence": "Apache-2.0"},
    )
    shutil.copyfile(onnx, ONNX_PATH)
    shutil.copyfile(_find(args.source, "LICENSE"), LICENSE_PATH)
    for path in (WEIGHTS_PATH, ONNX_PATH):
        logger.warning("wrote %s (sha256 %s)", path, hashlib.sha256(path.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()

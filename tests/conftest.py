"""Shared fixtures: the test photos, tiny backbones, synthetic targets and a loopback Hub server.

The shared data bundle is ``$FACEZOO_DATA``, by default ``../shared/data`` beside the repository
(``pytest_configure`` sets the variable to it when unset, so every test and subprocess sees it).

huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE once, when it is first
imported, so ``pytest_configure`` sets them before any test module imports facezoo or timm.
The Hub tests talk to ``../shared/tools/minihub/minihub.py`` with the real client; without that
file they are skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(__file__).resolve().parent / "assets"
#: The real face photos every task is run on (see assets/README.md for their provenance).
FACES = [ASSETS / name for name in ("portrait.jpg", "portrait_same_person.jpg", "portrait_other_person.jpg", "group.jpg", "grayscale.jpg")]
#: Two timm families, randomly initialised and tiny, so that every task builds in milliseconds.
BACKBONES = ("test_resnet", "test_efficientnet", "test_vit")  # three families: ResNet, EfficientNet, ViT (fixed input size)


def _minihub_script() -> Path | None:
    shared = Path(os.environ["FACEZOO_DATA"]).resolve().parent if os.environ.get("FACEZOO_DATA") else REPO.parent / "shared"
    script = shared / "tools" / "minihub" / "minihub.py"
    return script if script.is_file() else None


def pytest_configure(config: pytest.Config) -> None:
    if "huggingface_hub" in sys.modules:
        raise pytest.UsageError("huggingface_hub was imported before tests/conftest.py could point it at a test Hub")
    if not os.environ.get("FACEZOO_DATA") and (REPO.parent / "shared" / "data").is_dir():
        # The README's layout: the shared data bundle beside the repository, wherever pytest runs from.
        os.environ["FACEZOO_DATA"] = str(REPO.parent / "shared" / "data")
    root = Path(tempfile.mkdtemp(prefix="facezoo-tests-"))
    # Detections, framed faces, ONNX exports: never the user's cache, and CI starts from nothing.
    os.environ.update(HF_HUB_CACHE=str(root / "hf-cache"), HF_HUB_DISABLE_TELEMETRY="1", FACEZOO_CACHE=str(root / "facezoo-cache"))
    os.environ.pop("HF_HUB_OFFLINE", None)
    config._facezoo_tmp = root
    config._minihub = None
    script = _minihub_script()
    if script is None:
        return
    proc = subprocess.Popen(
        [sys.executable, str(script), "--root", str(root / "hub"), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    url = proc.stdout.readline().split()[-1]  # "minihub listening on http://127.0.0.1:PORT"
    os.environ.update(HF_ENDPOINT=url, HF_TOKEN="facezoo-tests")
    config._minihub = (proc, url)


def pytest_unconfigure(config: pytest.Config) -> None:
    if getattr(config, "_minihub", None):
        proc, _ = config._minihub
        proc.terminate()
        proc.wait(timeout=10)
    if getattr(config, "_facezoo_tmp", None):
        shutil.rmtree(config._facezoo_tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def hub_url(pytestconfig: pytest.Config) -> str:
    """URL of the loopback Hub server (the session's huggingface_hub already points at it)."""
    if pytestconfig._minihub is None:
        pytest.skip("no Hub stand-in: ../shared/tools/minihub/minihub.py is absent")
    return pytestconfig._minihub[1]


@pytest.fixture
def repo_id(hub_url: str) -> str:
    """A fresh repository name on the test Hub (created by the first push)."""
    return f"tester/model-{uuid.uuid4().hex[:8]}"


def synthetic_targets(task: str, labels: tuple[str, ...], n: int):
    """Training targets of the right shape and range for ``task``; extra ``build_loss`` arguments.

    Tasks not listed below are classification tasks over their labels.
    """
    import torch

    g = torch.Generator().manual_seed(0)
    if task == "beauty":
        return 1.0 + 4.0 * torch.rand(n, generator=g), {}
    if task == "age-gender":
        age = torch.randint(1, 80, (n,), generator=g).float()
        return torch.stack([age, (torch.arange(n) % 2).float()], dim=1), {}
    if task == "keypoints":
        return torch.rand(n, 136, generator=g) * 2.0 - 1.0, {}
    if task == "identity":
        return torch.arange(n) % 3, {"num_classes": 3}
    if not labels:
        pytest.fail(f"task {task!r} has no labels and no synthetic target is defined for it in conftest.py")
    return torch.arange(n) % len(labels), {}


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width``×``height`` pixels: a decompression bomb's shape."""
    import io
    import struct
    import zlib

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (16, 16)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:33] = ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)

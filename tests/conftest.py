"""Shared fixtures: an isolated cache and a loopback Hub server.

The shared data bundle is ``$FACEZOO_DATA``, by default ``../shared/data`` beside the repository
(``pytest_configure`` sets the variable to it when unset, so every test and subprocess sees it).

huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE once, when it is first
imported, so ``pytest_configure`` sets them before any test module imports facezoo or timm.
The Hub tests talk to ``../shared/tools/minihub/minihub.py`` with the real client; without that
file they are skipped.

The test photos, tiny backbones and the checks every task passes are in :mod:`facezoo.testing`,
which tests import like any plugin's tests do; this file holds fixtures only.
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


def _minihub_script() -> Path | None:
    shared = Path(os.environ["FACEZOO_DATA"]).resolve().parent if os.environ.get("FACEZOO_DATA") else Path(__file__).resolve().parents[2] / "shared"
    script = shared / "tools" / "minihub" / "minihub.py"
    return script if script.is_file() else None


def pytest_configure(config: pytest.Config) -> None:
    if "huggingface_hub" in sys.modules:
        raise pytest.UsageError("huggingface_hub was imported before tests/conftest.py could point it at a test Hub")
    beside = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not os.environ.get("FACEZOO_DATA") and beside.is_dir():
        # The README's layout: the shared data bundle beside the repository, wherever pytest runs from.
        os.environ["FACEZOO_DATA"] = str(beside)
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


@pytest.fixture(scope="session")
def group_photos() -> list[Path]:
    """The shared data bundle's group photos (several faces each)."""
    photos = sorted((Path(os.environ.get("FACEZOO_DATA", "")) / "photos").glob("group_*.jpg"))
    if not photos:
        pytest.skip("the shared data bundle's group photos are absent (set FACEZOO_DATA to the bundle)")
    return photos


@pytest.fixture(scope="session")
def chromium():
    """playwright's chromium launcher and the system's Chromium binary (playwright never downloads one here)."""
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "playwright") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: pip install -e '.[serve,test]'")
    from facezoo.testing.web import find_chromium

    executable = find_chromium()
    if executable is None:
        pytest.skip("no chromium found: apt-get install chromium (or set FACEZOO_CHROMIUM to a Chromium binary)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield lambda **options: playwright.chromium.launch(executable_path=executable, headless=True, **options)


@pytest.fixture(scope="session")
def browser(chromium):
    """One headless Chromium for the tests' pages."""
    browser = chromium()
    yield browser
    browser.close()

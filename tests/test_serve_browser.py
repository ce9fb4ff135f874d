"""The web page in a real browser: the system's chromium, headless, driven by playwright (which
never downloads a browser here), against ``facezoo serve`` listening on 127.0.0.1.

A group photo goes in through the page's file picker; the page must show one box and one table
row per face the Python API finds, and an error for a file that is not an image. A screenshot is
saved as a test artifact (to ``$FACEZOO_ARTIFACTS`` when set, else pytest's temporary folder);
``FACEZOO_DOCS_SCREENSHOT=1`` also writes it to ``docs/images/serve.png``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch
from PIL import Image

import facezoo
from facezoo._analyze import Analyzer
from facezoo.testing.web import serving

REPO = Path(__file__).resolve().parents[1]
PHOTO = "group_sts106_crew.jpg"
TASKS = ("beauty", "age-gender", "expression")


@pytest.fixture(scope="module")
def photo() -> Path:
    root = os.environ.get("FACEZOO_DATA")
    if not root or not (Path(root) / "photos" / PHOTO).is_file():
        pytest.skip(f"the shared data bundle's photos/{PHOTO} is absent (set FACEZOO_DATA to the bundle)")
    return Path(root) / "photos" / PHOTO


@pytest.fixture(scope="module")
def models() -> list:
    """The shipped models when they load, else tiny untrained ones (the page says which)."""
    try:
        return [facezoo.load(task) for task in TASKS]
    except facezoo.FacezooError:
        torch.manual_seed(0)
        return [facezoo.load(task, "test_resnet", pretrained=False) for task in TASKS]


def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ["FACEZOO_ARTIFACTS"]) if os.environ.get("FACEZOO_ARTIFACTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def expected_faces(photo: Path) -> tuple[int, int]:
    """``faces_clear`` and ``faces`` of the photo in the bundle's manifest."""
    with open(photo.parent / "manifest.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["file"] == photo.name)
    return int(row["faces_clear"]), int(row["faces"])


def test_page_shows_a_box_and_a_row_per_face(browser, models, photo, tmp_path):
    from facezoo.serve import create_app

    faces = len(Analyzer(models=models)(photo))
    clear, seen = expected_faces(photo)
    assert clear <= faces <= seen, f"the detector found {faces} faces in {photo.name}; the manifest counts {clear} to {seen}"
    with serving(create_app(models=models)) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        page.wait_for_selector("input[name=task]")
        assert page.locator("input[name=task]").count() == len(TASKS)
        assert page.locator("#token-form").is_hidden()  # this server needs no token

        page.set_input_files("#photos", {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"not a photo at all"})
        page.wait_for_selector(".card.failed .error")
        assert "upload 'image' ('notes.jpg'): not an image Pillow can read" in page.inner_text(".card.failed .error")

        page.set_input_files("#photos", str(photo))
        page.wait_for_selector(".card.done", timeout=60_000)
        card = page.locator(".card.done")
        assert card.locator(".face-box").count() == faces
        assert card.locator("table.faces tbody tr").count() == faces
        assert card.locator(".status").inner_text() == f"{faces} faces"
        assert card.locator("img").evaluate("img => img.complete && img.naturalWidth") == 1024
        card.locator("table.faces tbody tr").nth(1).hover()
        assert "active" in card.locator(".face-box").nth(1).get_attribute("class")
        page.mouse.move(0, 0)
        assert not errors, errors

        shot = artifacts(tmp_path) / "serve.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("FACEZOO_DOCS_SCREENSHOT") == "1":  # 256 colours: a third of the size, for the README
            (REPO / "docs" / "images").mkdir(exist_ok=True)
            Image.open(shot).convert("RGB").quantize(256).save(REPO / "docs" / "images" / "serve.png", optimize=True)
        page.close()


def test_page_asks_for_the_token(browser, models, photo):
    from facezoo.serve import ServeSettings, create_app

    with serving(create_app(models=models[:1], settings=ServeSettings(token="browser-token"))) as url:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#token-form:not([hidden])")
        assert "needs its token" in page.inner_text("#notice")
        page.fill("#token", "browser-token")
        page.click("#token-form button")
        page.wait_for_selector("input[name=task]")
        page.set_input_files("#photos", str(photo))
        page.wait_for_selector(".card.done", timeout=60_000)
        if models[0].config.trained:  # shipped (ONNX) models: the in-browser mode fetches them with the token
            page.wait_for_selector("#in-browser:not([disabled])")
            page.check("#in-browser")
            page.set_input_files("#photos", str(photo))
            page.locator("#results .card.done[data-mode=browser]").wait_for(timeout=120_000)
        page.close()

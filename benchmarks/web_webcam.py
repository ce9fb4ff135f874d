"""Frames per second of the in-browser webcam mode, in headless Chromium on Chromium's fake camera
(a 640×480 Y4M video of a group photo, swaying a few pixels), with detection and one task.

Each configuration runs the page for ``--seconds`` after a warm-up and reports the page's own
counter (frames shown per second, over its last 2 s) with the mean milliseconds per frame spent
detecting (decode + YuNet at 320 px + O-Net) and on the task:

- ``serve``: facezoo serve's page (cross-origin isolated: onnxruntime-web on 2 threads), each
  face's task results refreshed once a second (the page's default);
- ``serve, every frame``: the same page with ``?refresh=0``: the task runs on every face of every frame;
- ``export-web``: the static export from a plain ``http.server`` (not isolated: 1 thread).

    python benchmarks/web_webcam.py [--task age-gender] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facezoo.serve import create_app
from facezoo.testing.web import find_chromium, serving, static_site, write_y4m
from facezoo.web import export_web

PHOTO = Path(os.environ.get("FACEZOO_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "photos" / "group_expedition1_crew.jpg"


def run(page, url: str, seconds: float) -> dict:
    page.goto(url)
    page.wait_for_selector("#webcam:not([disabled])")
    page.click("#webcam")
    while int(page.get_attribute("#live", "data-frames") or 0) < 20:  # warm-up: sessions created, first frames
        time.sleep(0.2)
    start_frames, start = int(page.get_attribute("#live", "data-frames")), time.monotonic()
    time.sleep(seconds)
    frames, elapsed = int(page.get_attribute("#live", "data-frames")) - start_frames, time.monotonic() - start
    result = {"fps": frames / elapsed, "detect_ms": float(page.get_attribute("#live", "data-detect-ms")), "tasks_ms": float(page.get_attribute("#live", "data-tasks-ms"))}
    page.click("#webcam")
    return result


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="age-gender")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="facezoo-webcam-"))
    photo = np.asarray(Image.open(PHOTO).convert("RGB").resize((660, 480)))
    video = write_y4m(work / "camera.y4m", [np.ascontiguousarray(photo[:, s : s + 640]) for s in [*range(11), *range(9, 0, -1)]], fps=30)
    site = export_web(work / "site", [args.task])
    flags = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), headless=True, args=flags)
        page = browser.new_page()
        rows = {}
        with serving(create_app([args.task])) as url:
            rows["serve (2 threads), results refreshed each second"] = run(page, url, args.seconds)
            rows["serve (2 threads), the task on every frame"] = run(page, url + "/?refresh=0", args.seconds)
        with static_site(site) as (url, _):
            rows["export-web from http.server (1 thread), refreshed each second"] = run(page, url, args.seconds)
        browser.close()
    print(f"webcam mode, 640x480 fake camera, {PHOTO.name} (3 faces), detection + {args.task}, {os.cpu_count()} CPU cores")
    for name, r in rows.items():
        print(f"  {name}: {r['fps']:.1f} frames/s (per frame: detection {r['detect_ms']:.0f} ms, {args.task} {r['tasks_ms']:.0f} ms)")


if __name__ == "__main__":
    main()

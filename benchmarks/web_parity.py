"""The browser against Python on the bundle's six group photos: how far facezoo.js's answers are
from facezoo.analyze's, and how long each takes, side by side on this machine.

The browser side is the JS API on an export-web folder served by a plain static server, in
headless Chromium (onnxruntime-web, WASM, 1 thread: a plain static server sends no cross-origin
isolation headers). Python is facezoo.analyze of the decoded photo on ONNX Runtime with its
default threads. Times are the median of 3 warm runs per photo (the browser's from decoded pixels).

    python benchmarks/web_parity.py [--tasks beauty,age-gender,expression]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

import facezoo
from facezoo.detection.boxes import box_iou
from facezoo.testing.web import find_chromium, static_site
from facezoo.web import export_web

PHOTOS = Path(os.environ.get("FACEZOO_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "photos"

PAGE = """<!doctype html><meta charset="utf-8"><script src="web/facezoo.js"></script>
<script type="module">
const q = new URLSearchParams(location.search);
const fz = await facezoo.create({ tasks: q.get("tasks").split(","), base: "web/", threads: Number(q.get("threads")) });
const out = {};
for (const name of q.get("photos").split(",")) {
  const pixels = await facezoo.pixels(name);
  const times = [];
  let result;
  for (let i = 0; i < 4; i++) { const t = performance.now(); result = await fz.analyze(pixels); times.push(performance.now() - t); }
  out[name] = { result, ms: times.slice(1) };
}
window.done = out;
</script>"""


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="beauty,age-gender,expression")
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    photos = sorted(PHOTOS.glob("group_*.jpg"))
    site = export_web(Path(tempfile.mkdtemp(prefix="facezoo-parity-")) / "site", tasks)
    (site / "bench.html").write_text(PAGE, encoding="utf-8")
    for photo in photos:
        (site / photo.name).write_bytes(photo.read_bytes())

    models = [facezoo.load(t) for t in tasks]
    python, python_ms = {}, {}
    for photo in photos:
        image = Image.open(photo).convert("RGB")
        facezoo.analyze(image, models=models)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            faces = facezoo.analyze(image, models=models)
            times.append(1000 * (time.perf_counter() - start))
        python[photo.name], python_ms[photo.name] = [f.to_dict() for f in faces], statistics.median(times)

    browser_runs = {}
    with sync_playwright() as playwright, static_site(site) as (url, _):
        browser = playwright.chromium.launch(executable_path=find_chromium(), headless=True)
        page = browser.new_page()
        page.goto(f"{url}bench.html?tasks={args.tasks}&threads=1&photos={','.join(p.name for p in photos)}")
        page.wait_for_function("() => window.done !== undefined", timeout=600_000)
        browser_runs[1] = page.evaluate("() => window.done")
        browser.close()

    print(f"in-browser facezoo.js vs facezoo.analyze, tasks {args.tasks}, {len(photos)} group photos, {os.cpu_count()} CPU cores")
    for threads, run in browser_runs.items():
        worst = {"iou": 1.0, "age": 0.0, "beauty": 0.0, "expression_p": 0.0}
        labels = same = 0
        for photo in photos:
            got, want = run[photo.name]["result"]["faces"], python[photo.name]
            assert len(got) == len(want), (photo.name, len(got), len(want))
            for w in want:
                g = max(got, key=lambda f: box_iou(f["face"]["box"], w["face"]["box"]))
                worst["iou"] = min(worst["iou"], box_iou(g["face"]["box"], w["face"]["box"]))
                if "age-gender" in w:
                    worst["age"] = max(worst["age"], abs(g["age-gender"]["age"] - w["age-gender"]["age"]))
                    labels += 1
                    same += g["age-gender"]["gender"] == w["age-gender"]["gender"]
                if "beauty" in w:
                    worst["beauty"] = max(worst["beauty"], abs(g["beauty"]["score"] - w["beauty"]["score"]))
                if "expression" in w:
                    labels += 1
                    same += g["expression"]["label"] == w["expression"]["label"]
                    worst["expression_p"] = max(worst["expression_p"], *(abs(g["expression"]["probabilities"][k] - v) for k, v in w["expression"]["probabilities"].items()))
        faces = sum(len(v) for v in python.values())
        print(f"  {faces} faces: least box IoU {worst['iou']:.4f}; largest difference: age {worst['age']:.3f} y, beauty {worst['beauty']:.4f}, "
              f"expression probability {worst['expression_p']:.4f}; {same} of {labels} gender and expression labels equal")
        for photo in photos:
            ms = statistics.median(run[photo.name]["ms"])
            print(f"    {photo.name}: browser ({threads} thread) {ms:.0f} ms, Python {python_ms[photo.name]:.0f} ms: {ms / python_ms[photo.name]:.1f}x")


if __name__ == "__main__":
    main()

"""PyTorch against ONNX Runtime (float32 and int8), side by side in one process, as ratios.

Three measurements, each repeated with the runtimes interleaved (so drift in machine load hits
all alike), medians reported:

1. ``predict`` images/s per task at batch 1 and 32 on framed faces (``detect=False``: crop,
   normalise, network, postprocess), torch vs onnx float32 vs onnx int8 (where the model ships one);
2. ``facezoo.analyze`` with the five tasks, ms per photo on the bundle's group photos, torch vs
   onnx, with the detector's share;
3. a one-shot ``facezoo predict`` on the command line (a new process each time, ONNX file already
   built), torch vs onnx.

Both runtimes get the same number of threads (``--threads``, default 2). Shipped models are used
when they load; otherwise untrained ones of the same architecture (speed does not depend on the
weights; int8 is then skipped).

Example:
    python benchmarks/runtime_speed.py --threads 2 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TASKS = ("beauty", "age-gender", "expression", "keypoints", "identity")


def data_root() -> Path:
    return Path(os.environ.get("FACEZOO_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def load(task: str, runtime: str, quantize: str | None = None):
    import facezoo

    try:
        return facezoo.load(task, runtime=runtime, quantize=quantize)
    except facezoo.FacezooError:
        if quantize:
            return None
        import tempfile

        folder = Path(tempfile.gettempdir()) / f"facezoo-bench-{task}"
        if not (folder / "config.json").exists():
            facezoo.load(task, "efficientnet_lite0", pretrained=False).save_pretrained(folder)
        return facezoo.load(folder, runtime=runtime)


def timed(function, repeats: int) -> float:
    """Median seconds of ``function()`` over ``repeats`` runs (after one warm-up)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def predict_speed(repeats: int) -> None:
    from facezoo._images import load_image

    faces = [load_image(p) for p in sorted((data_root() / "scut-fbp5500" / "Images").glob("*.jpg"))[:64]]
    print("\n## predict, framed faces (images/s; higher is better)\n")
    print("| task | batch | torch | onnx fp32 | onnx int8 | onnx / torch | int8 / torch |")
    print("|---|---|---|---|---|---|---|")
    for task in TASKS:
        models = {"torch": load(task, "torch"), "onnx": load(task, "onnx"), "int8": load(task, "onnx", "int8")}
        for batch in (1, 32):
            images = faces[:batch] if batch > 1 else faces[:1]
            rate = {}
            for name, model in models.items():
                if model is None:
                    continue
                seconds = timed(lambda m=model, images=images, batch=batch: m.predict(images * (32 // len(images)), detect=False, batch_size=batch), repeats)
                rate[name] = 32 / seconds
            int8 = f"{rate['int8']:.0f}" if "int8" in rate else "—"
            int8_ratio = f"{rate['int8'] / rate['torch']:.1f}×" if "int8" in rate else "—"
            print(f"| {task} | {batch} | {rate['torch']:.0f} | {rate['onnx']:.0f} | {int8} | {rate['onnx'] / rate['torch']:.1f}× | {int8_ratio} |")


def analyze_speed(repeats: int) -> None:
    import facezoo
    from facezoo._analyze import Analyzer
    from facezoo._images import load_image

    photos = sorted((data_root() / "photos").glob("group_*.jpg"))
    print("\n## analyze, five tasks (ms per photo, median; lower is better)\n")
    print("| photo | faces | torch | onnx | torch / onnx | detector share (onnx) |")
    print("|---|---|---|---|---|---|")
    analyzers = {runtime: Analyzer(models=[load(task, runtime) for task in TASKS]) for runtime in ("torch", "onnx")}
    totals = {"torch": [], "onnx": []}
    for photo in photos:
        image = load_image(photo)
        ms = {runtime: 1000 * timed(lambda a=analyzer, image=image: a(image), repeats) for runtime, analyzer in analyzers.items()}
        detector = 1000 * timed(lambda image=image: analyzers["onnx"].models[0].detect([image]), repeats)
        faces = len(analyzers["onnx"](image))
        for runtime in totals:
            totals[runtime].append(ms[runtime])
        print(f"| {photo.name} ({image.width}×{image.height}) | {faces} | {ms['torch']:.0f} | {ms['onnx']:.0f} | {ms['torch'] / ms['onnx']:.1f}× | {detector / ms['onnx']:.0%} |")
    print(f"| median | | {statistics.median(totals['torch']):.0f} | {statistics.median(totals['onnx']):.0f} | {statistics.median(totals['torch']) / statistics.median(totals['onnx']):.1f}× | |")
    del facezoo


def cli_speed(repeats: int) -> None:
    photo = data_root() / "photos" / "eileen_collins_nasa_portrait.jpg"
    facezoo = Path(sys.executable).with_name("facezoo")
    print("\n## one-shot command line: facezoo predict beauty PHOTO (seconds, median of runs)\n")
    results = {}
    for runtime in ("torch", "onnx"):
        command = [str(facezoo), "predict", "beauty", str(photo), "--runtime", runtime]
        subprocess.run(command, check=True, capture_output=True)  # builds the ONNX file once
        results[runtime] = timed(lambda c=command: subprocess.run(c, check=True, capture_output=True), repeats)
    print("| torch | onnx | torch / onnx |\n|---|---|---|")
    print(f"| {results['torch']:.2f} | {results['onnx']:.2f} | {results['torch'] / results['onnx']:.1f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=("predict", "analyze", "cli"))
    args = parser.parse_args()
    os.environ["FACEZOO_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    print(f"threads: {args.threads} (torch and onnxruntime alike); CPU cores: {os.cpu_count()}")
    for name, function in (("predict", predict_speed), ("analyze", analyze_speed), ("cli", cli_speed)):
        if args.only in (None, name):
            function(args.repeats)


if __name__ == "__main__":
    main()

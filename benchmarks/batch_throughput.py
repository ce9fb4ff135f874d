"""``facezoo batch`` throughput: local engine with 1 and N workers and the Ray engine, side by side.

All runs analyse the same images (the shared bundle's photos, repeated to a few hundred, each
copy with its own id) with the same models: two tasks on their default backbone, random
weights (throughput does not depend on them). Each engine's time is end to end, as a user
waits: start-up (worker processes or a local Ray, loading the models in each), reading,
detecting, the models, writing parts and the final file. A run of one image per engine gives
the start-up cost, so the steady rate is reported too. The engines run one after the other, in
rotating order when repeated, and the script prints images/s and ratios to the 1-worker run.

Then, in this process, the cost of each stage per image (decode, detection, each model), which
``docs/scale.md`` uses to estimate large runs.

Example:
    python benchmarks/batch_throughput.py                        # 17 photos x 12, 2 workers
    python benchmarks/batch_throughput.py --repeat 20 --workers 2 --tasks age-gender,expression
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import statistics
import tempfile
import time
from pathlib import Path

import facezoo


def photos() -> list[Path]:
    root = Path(os.environ.get("FACEZOO_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    found = sorted((root / "photos").glob("*.jpg"))
    if not found:
        raise SystemExit(f"no photos in {root / 'photos'}: set FACEZOO_DATA to the shared data bundle")
    return found


def stages(models: list, paths: list[Path]) -> dict[str, float]:
    """Milliseconds per image of each stage, in this process (1 torch thread as set by the caller)."""
    from facezoo._images import load_image

    start = time.perf_counter()
    pictures = [load_image(p) for p in paths]
    costs = {"decode": time.perf_counter() - start}
    start = time.perf_counter()
    faces = models[0].detect(pictures)
    costs["detect"] = time.perf_counter() - start
    for model in models:
        start = time.perf_counter()
        model.predict(pictures, faces=faces)
        costs[model.config.task] = time.perf_counter() - start
    faces_per_image = sum(map(len, faces)) / len(paths)
    return {**{k: 1000 * v / len(paths) for k, v in costs.items()}, "faces/image": faces_per_image}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="age-gender,expression")
    parser.add_argument("--repeat", type=int, default=12, help="copies of the photo list")
    parser.add_argument("--workers", type=int, default=2, help="workers of the multi-worker runs (local and Ray)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="repetitions of all engines (rotating their order)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="facezoo-bench-"))
    names = []
    for task in args.tasks.split(","):
        torch.manual_seed(0)
        names.append(str(facezoo.load(task, pretrained=False).save_pretrained(folder / task)))
    images = photos()
    with open(folder / "images.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "path"])
        writer.writerows([f"{k:03d}/{p.name}", str(p)] for k in range(args.repeat) for p in images)
    count = args.repeat * len(images)

    engines = {"local, 1 worker": dict(engine="local", workers=1), f"local, {args.workers} workers": dict(engine="local", workers=args.workers)}
    if importlib.util.find_spec("ray") is not None:
        engines[f"ray, {args.workers} actors"] = dict(engine="ray", workers=args.workers)
    else:
        print("Ray is not installed (pip install 'facezoo[ray]'): its row is left out")

    def run(label: str, source, out: str) -> float:
        start = time.perf_counter()
        facezoo.batch(names, source, folder / out, batch_size=args.batch_size, chunk_size=args.batch_size * 4, progress=False, **engines[label])
        return time.perf_counter() - start

    load_before = os.getloadavg()[0]
    startup = {label: run(label, [str(images[0])], f"startup-{k}.jsonl") for k, label in enumerate(engines)}
    seconds: dict[str, list[float]] = {label: [] for label in engines}
    labels = list(engines)
    for r in range(args.rounds):
        for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
            seconds[label].append(run(label, folder / "images.csv", f"run-{r}-{labels.index(label)}.parquet"))

    print(f"\n{count} images ({len(images)} photos x {args.repeat}), tasks {args.tasks}, batch size {args.batch_size}, {os.cpu_count()} CPUs, 1 torch thread per worker")
    print(f"load average (1 min) before the runs {load_before:.1f}, after {os.getloadavg()[0]:.1f}: other work on the machine slows every row alike only if it stays constant")
    print(f"{'engine':<20} {'seconds':>8} {'images/s':>9} {'x 1 worker':>11} {'start-up s':>11} {'steady img/s':>13}")
    base = statistics.median(seconds[labels[0]])
    for label in labels:
        wall = statistics.median(seconds[label])
        steady = count / max(wall - startup[label], 1e-9)
        print(f"{label:<20} {wall:>8.1f} {count / wall:>9.2f} {base / wall:>11.2f} {startup[label]:>11.1f} {steady:>13.2f}")

    models = [facezoo.load(name) for name in names]
    costs = stages(models, images)
    print(f"\nper image, one process, 1 thread ({costs.pop('faces/image'):.2f} faces per photo; photos up to 1024 px):")
    for stage, ms in costs.items():
        print(f"  {stage:<12} {ms:8.1f} ms")
    print(f"  {'total':<12} {sum(costs.values()):8.1f} ms")


if __name__ == "__main__":
    main()

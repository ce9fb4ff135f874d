"""Warm ``facezoo.analyze()`` of the five built-in tasks on the bundle's group photos: where the time
goes, and (with ``--baseline``) how it compares with another facezoo checkout, interleaved.

The stages are timed as ``analyze()`` runs them: loading the photo, detecting once, cutting the
crops once per framing, then each task's network and post-processing on all faces of the photo
in one batch. With ``--baseline DIR`` a second Python process imports facezoo from that checkout
(e.g. ``git worktree add ../base 3b2c1e0``) and times its own ``analyze()`` of the same photo
right after this one, photo by photo, so load drift hits both alike; the ratio is per photo.

Example:
    FACEZOO_DATA=../shared/data python benchmarks/analyze_speed.py --threads 2 --repeats 5
    python benchmarks/analyze_speed.py --baseline ../base
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

GROUPS = [
    "group_sts98_two_astronauts.jpg",
    "group_expedition1_crew.jpg",
    "group_obama_calls_iss.jpg",
    "group_expedition38_crew.jpg",
    "group_sts106_crew.jpg",
    "group_sts131_expedition23.jpg",
]
TASKS = ["beauty", "identity", "age-gender", "keypoints", "expression"]
# The baseline's side: reads photo paths on stdin, answers each with its analyze() time.
CHILD = """
import sys, time, json, warnings
warnings.simplefilter("ignore")
import facezoo
tasks = json.loads(sys.argv[1])
facezoo.analyze(sys.argv[2], tasks=tasks)
for line in sys.stdin:
    start = time.perf_counter()
    faces = facezoo.analyze(line.strip(), tasks=tasks)
    print(json.dumps([time.perf_counter() - start, len(faces)]), flush=True)
"""


def photos_dir() -> Path:
    root = os.environ.get("FACEZOO_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(root) / "photos"


def stages(models: list, path: Path) -> dict[str, float]:
    """One photo through the stages of ``analyze()``, each timed."""
    from facezoo._analyze import Analyzer
    from facezoo._images import load_images

    times = {}
    start = time.perf_counter()
    pictures = load_images([path])
    times["load photo"] = time.perf_counter() - start
    start = time.perf_counter()
    faces = models[0].detect(pictures)
    times["detect"] = time.perf_counter() - start
    start = time.perf_counter()
    cut = Analyzer(models=models).cut(pictures, faces)
    times["crop (once per framing)"] = time.perf_counter() - start
    for model in models:
        start = time.perf_counter()
        model.predict_crops(cut[model.transform.framing], 1)
        times[model.config.task] = time.perf_counter() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="a facezoo checkout to compare with, in a second process")
    args = parser.parse_args()
    os.environ["FACEZOO_THREADS"] = str(args.threads)
    import facezoo

    paths = [photos_dir() / name for name in GROUPS]
    models = [facezoo.load(task) for task in TASKS]
    facezoo.analyze(paths[0], models=models)
    child = None
    if args.baseline:
        base = args.baseline.resolve()
        env = {**os.environ, "PYTHONPATH": f"{base}{os.pathsep}{base / 'plugins'}"}
        child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(TASKS), str(paths[0])], cwd=base, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    per_stage: dict[str, list[float]] = {}
    ours: list[float] = []
    theirs: list[float] = []
    ratios: list[float] = []
    faces = 0
    for _ in range(args.repeats):
        for path in paths:
            for name, seconds in stages(models, path).items():
                per_stage.setdefault(name, []).append(seconds)
            start = time.perf_counter()
            faces += len(facezoo.analyze(path, models=models))
            ours.append(time.perf_counter() - start)
            if child is not None:
                child.stdin.write(f"{path}\n")
                child.stdin.flush()
                seconds, _ = json.loads(child.stdout.readline())
                theirs.append(seconds)
                ratios.append(seconds / ours[-1])
    if child is not None:
        child.stdin.close()
        child.wait()

    runtime = models[0].runtime
    print(f"{len(paths)} group photos × {args.repeats}, {faces / args.repeats:.0f} faces per pass, {args.threads} threads, runtime {runtime}")
    print("| stage | median ms per photo |\n|---|---|")
    for name, values in per_stage.items():
        print(f"| {name} | {statistics.median(values) * 1000:.1f} |")
    print(f"| **analyze() as called** | **{statistics.median(ours) * 1000:.1f}** |")
    if theirs:
        print(f"\nbaseline {args.baseline}: median {statistics.median(theirs) * 1000:.1f} ms per photo; per-photo ratio baseline / this: median {statistics.median(ratios):.2f}×")


if __name__ == "__main__":
    main()

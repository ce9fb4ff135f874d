"""Measure facezoo's MTCNN: detection rate on face-crop datasets, landmark error, CPU speed.

Datasets (read in place from the shared data bundle):

* LFW (112x112 crops), UTKFace (64x64), SCUT-FBP5500 (128x128): every image holds one face,
  so we report the detection rate (at least one face found), the "centred" rate (the largest
  detection's box centre lies in the middle half of the image, i.e. the hit is the subject's
  face) and the spread (standard deviation, as a fraction of the image size) of the eye midpoint,
  which is small for these roughly aligned crops when the landmarks are right.
* P1 keypoints test frames (68 iBUG points): the same, plus the five-landmark error of the
  largest detection against points derived from the 68 (eye centres = mean of 36-41 / 42-47,
  nose tip = 30, mouth corners = 48 / 54), normalised by the outer-eye-corner distance (36-45).

Each dataset is run with several input settings: ``default`` (the image as is), ``pad25``
(a black border of 25 % of the longer side on every side) and ``up160+pad25`` (upscale so the
longer side is 160 px, then pad). ``ms/img`` is detector time only (no image loading).
Speed is the mean time per 640x480 photo on CPU.

Example:
    python benchmarks/detection_eval.py --data ../shared/data --limit 300
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facezoo.detection import MTCNN

SETTINGS: dict[str, tuple[int | None, float]] = {
    # name: (upscale longer side to this many px or None, border as a fraction of the longer side)
    "default": (None, 0.0),
    "pad25": (None, 0.25),
    "up160+pad25": (160, 0.25),
}
TIMING_PHOTOS = [
    "eileen_collins_nasa_portrait.jpg",
    "peggy_whitson_iss.jpg",
    "group_sts98_two_astronauts.jpg",
    "group_expedition1_crew.jpg",
    "group_obama_calls_iss.jpg",
    "group_sts106_crew.jpg",
]


def prepare(image: np.ndarray, upscale: int | None, pad: float) -> tuple[np.ndarray, float, int]:
    """Upscale and pad an image; return it with the scale and border used (to map points back)."""
    scale = 1.0
    if upscale is not None:
        scale = upscale / max(image.shape[:2])
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))
    border = round(pad * max(image.shape[:2]))
    return np.pad(image, ((border, border), (border, border), (0, 0))), scale, border


def five_from_68(points: np.ndarray) -> np.ndarray:
    """MTCNN-style five points from 68 iBUG points."""
    return np.stack([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]])


def evaluate(
    detector: MTCNN,
    files: list[Path],
    upscale: int | None,
    pad: float,
    truth: Callable[[Path], np.ndarray] | None = None,
) -> dict[str, float]:
    """Run one setting over ``files``; ``truth`` gives 68 points per file when available."""
    found = centred = 0
    eye_mids, errors = [], []
    seconds = 0.0
    for batch_start in range(0, len(files), 64):
        batch = files[batch_start : batch_start + 64]
        originals = [np.asarray(Image.open(f).convert("RGB")) for f in batch]
        prepared = [prepare(img, upscale, pad) for img in originals]
        start = time.perf_counter()
        results = detector.detect([p[0] for p in prepared])
        seconds += time.perf_counter() - start
        for path, img, (_, scale, border), faces in zip(batch, originals, prepared, results, strict=True):
            if not faces:
                continue
            found += 1
            face = max(faces, key=lambda d: d.width * d.height)
            box = (np.array(face.box) - border) / scale
            marks = (np.array(face.landmarks) - border) / scale
            height, width = img.shape[:2]
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            centred += abs(cx - width / 2) < width / 4 and abs(cy - height / 2) < height / 4
            eye_mids.append(marks[:2].mean(0) / (width, height))
            if truth is not None:
                gt = truth(path)
                iod = np.linalg.norm(gt[36] - gt[45])
                errors.append(np.linalg.norm(marks - five_from_68(gt), axis=1).mean() / iod)
    spread = np.array(eye_mids).std(0) if eye_mids else np.array([np.nan, np.nan])
    out = {
        "n": len(files),
        "rate": found / len(files),
        "centred": centred / len(files),
        "spread_x": float(spread[0]),
        "spread_y": float(spread[1]),
        "ms": 1000 * seconds / len(files),
    }
    if truth is not None:
        err = np.array(errors)
        out |= {"nme": float(err.mean()), "nme_median": float(np.median(err)), "nme_over_10": float((err > 0.1).mean())}
    return out


def time_photos(detector: MTCNN, photos: Path, repeats: int) -> tuple[float, float, float, int]:
    """Best-of-``repeats`` ms per 640x480 photo: wall one per call, CPU one per call, wall batched.

    The best round is reported because other processes sharing the CPU only ever add time.
    Also returns the number of faces found in the photos.
    """
    images = [
        np.asarray(Image.open(photos / n).convert("RGB").resize((640, 480), Image.Resampling.BILINEAR))
        for n in TIMING_PHOTOS
    ]
    detector.detect(images)  # warm-up
    faces = sum(len(r) for r in detector.detect(images))
    single, cpu, batched = [], [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        for img in images:
            detector.detect([img])
        single.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
        start = time.perf_counter()
        detector.detect(images)
        batched.append(time.perf_counter() - start)
    per_photo = 1000 / len(images)
    return min(single) * per_photo, min(cpu) * per_photo, min(batched) * per_photo, faces


def evaluate_datasets(detector: MTCNN, data: Path, limit: int, threads: int) -> None:
    """Run every dataset under every setting and print one markdown table."""
    p1 = data / "p1-keypoints"
    with open(p1 / "test_frames_keypoints.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    p1_points = {r[0]: np.array(r[1:], dtype=float).reshape(68, 2) for r in rows}
    datasets = {
        "LFW (112 px)": (sorted((data / "lfw" / "lfw").glob("*/*.jpg")), None),
        "UTKFace (64 px)": (sorted((data / "utkface" / "UTKFace").glob("*.jpg")), None),
        "SCUT-FBP5500 (128 px)": (sorted((data / "scut-fbp5500" / "Images").glob("*.jpg")), None),
        "P1 test (96 px short side)": (
            sorted(p1 / "test" / name for name in p1_points),
            lambda path: p1_points[path.name],
        ),
    }

    print(f"MTCNN, thresholds (0.6, 0.7, 0.7), min_face_size 20, torch threads {threads}\n")
    print(
        "| dataset | setting | images | detected | centred | eye-mid spread x / y "
        "| NME (mean / median / >0.1) | ms/img |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, (files, truth) in datasets.items():
        if limit and len(files) > limit:
            files = sorted(random.Random(0).sample(files, limit))
        for setting, (upscale, pad) in SETTINGS.items():
            r = evaluate(detector, files, upscale, pad, truth)
            nme = f"{r['nme']:.4f} / {r['nme_median']:.4f} / {r['nme_over_10']:.1%}" if "nme" in r else "n/a"
            print(
                f"| {name} | {setting} | {r['n']} | {r['rate']:.1%} | {r['centred']:.1%} | "
                f"{r['spread_x']:.3f} / {r['spread_y']:.3f} | {nme} | {r['ms']:.1f} |",
                flush=True,
            )


def main() -> None:
    """Parse arguments, run every dataset and setting, print markdown tables."""
    default_data = os.environ.get("FACEZOO_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description="Evaluate facezoo's MTCNN detector.")
    parser.add_argument("--data", type=Path, default=Path(default_data), help="data bundle root ($FACEZOO_DATA)")
    parser.add_argument("--limit", type=int, default=300, help="images per dataset (random sample, seed 0); 0 = all")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=5, help="timing rounds over the 640x480 photos (best is kept)")
    parser.add_argument("--timing-only", action="store_true", help="skip the datasets, only time the photos")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    detector = MTCNN.from_pretrained()

    if not args.timing_only:
        evaluate_datasets(detector, args.data, args.limit, args.threads)

    single, cpu, batched, faces = time_photos(detector, args.data / "photos", args.repeats)
    load = os.getloadavg()[0]
    print(
        f"\n| speed: CPU, {args.threads} torch threads, best of {args.repeats} rounds, "
        f"1-min load avg {load:.1f} | ms per 640x480 photo |"
    )
    print("|---|---|")
    print(f"| one image per call ({len(TIMING_PHOTOS)} photos, {faces} faces), wall time | {single:.1f} |")
    print(f"| one image per call, process CPU time (all threads) | {cpu:.1f} |")
    print(f"| all {len(TIMING_PHOTOS)} in one call (same size, batched), wall time | {batched:.1f} |")


if __name__ == "__main__":
    main()

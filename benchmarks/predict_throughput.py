"""``FaceModel.predict`` throughput against a hand-written timm + PIL pipeline, side by side.

Both run the same model (a facezoo task model on a timm backbone, random weights: throughput does
not depend on them) on the same real JPEG files, batch size 32, without face detection, in one
process. The hand-written pipeline is what one would type without facezoo: PIL open → convert
RGB → resize to the model's input size with the same interpolation → tensor → normalise with
the same mean/std → stack → forward under ``torch.inference_mode``. Repetitions alternate between
the two (so drift in machine load hits both alike); the script prints the median images/s of
each and the median of the per-repetition ratios.

Example:
    python benchmarks/predict_throughput.py                      # beauty on efficientnet_lite0
    python benchmarks/predict_throughput.py --task age-gender --images 128 --repeats 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import facezoo

RESAMPLE = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}


def default_images() -> Path:
    root = os.environ.get("FACEZOO_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(root) / "scut-fbp5500" / "Images"


def hand_written(model: torch.nn.Module, paths: list[Path], batch_size: int, size: tuple[int, int], interpolation: str, mean, std) -> list[torch.Tensor]:
    """The pipeline without facezoo: returns the raw outputs of each batch."""
    height, width = size
    mean = torch.tensor(mean).view(1, 3, 1, 1)
    std = torch.tensor(std).view(1, 3, 1, 1)
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            arrays = []
            for path in paths[start : start + batch_size]:
                with Image.open(path) as img:
                    arrays.append(np.asarray(img.convert("RGB").resize((width, height), RESAMPLE[interpolation])))
            batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div(255.0)
            outputs.append(model((batch - mean) / std))
    return outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="beauty")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--images", type=int, default=256, help="how many JPEGs to read")
    parser.add_argument("--folder", type=Path, default=None, help="folder of JPEGs (default: SCUT-FBP5500 in $FACEZOO_DATA)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    folder = args.folder or default_images()
    paths = sorted(folder.glob("*.jpg"))[: args.images]
    if len(paths) < args.images:
        raise SystemExit(f"found {len(paths)} JPEGs in {folder}, need {args.images}: pass --folder")
    torch.manual_seed(0)
    model = facezoo.load(args.task, args.backbone, pretrained=False)  # torch: the hand-written side is torch too
    network, pre = model.network, model.config.preprocess

    def run_facezoo() -> None:
        model.predict(paths, batch_size=args.batch_size, detect=False)

    def run_hand_written() -> None:
        hand_written(network, paths, args.batch_size, pre.input_size, pre.interpolation, pre.mean, pre.std)

    # Same numbers first: the comparison is only fair if both compute the same thing.
    facezoo_out = network.run(model.transform.to_array(model.prepare(paths[: args.batch_size], detect=False)[0]))
    hand_out = hand_written(network, paths[: args.batch_size], args.batch_size, pre.input_size, pre.interpolation, pre.mean, pre.std)[0]
    difference = float(abs(facezoo_out - hand_out.numpy()).max())

    runs: dict[str, list[float]] = {"facezoo": [], "hand-written": []}
    steps = [("facezoo", run_facezoo), ("hand-written", run_hand_written)]
    run_facezoo(), run_hand_written()  # warm-up: allocator, oneDNN kernels, file cache
    for repeat in range(args.repeats):
        for name, step in steps if repeat % 2 == 0 else steps[::-1]:
            start = time.perf_counter()
            step()
            runs[name].append(len(paths) / (time.perf_counter() - start))
    # Each repetition runs both back to back, so its ratio is the least affected by load drift.
    paired = [a / b for a, b in zip(runs["facezoo"], runs["hand-written"], strict=True)]

    print(f"{model.config.model_id}: {len(paths)} JPEGs from {folder}, input {pre.input_size[1]}x{pre.input_size[0]} {pre.interpolation}, "
          f"batch {args.batch_size}, {torch.get_num_threads()} threads, {args.repeats} interleaved repetitions")
    print(f"max |output difference| on the first batch: {difference:.2e}")
    for name, values in runs.items():
        print(f"{name:>13}: {statistics.median(values):8.1f} images/s median   (runs: {', '.join(f'{v:.1f}' for v in values)})")
    ratio = statistics.median(paired)
    print(f"ratio facezoo / hand-written: {ratio:.3f} (median of the per-repetition ratios {', '.join(f'{r:.3f}' for r in paired)})"
          + ("" if ratio >= 0.95 else "   MORE THAN 5% SLOWER"))


if __name__ == "__main__":
    main()

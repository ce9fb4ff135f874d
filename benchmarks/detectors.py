"""Face detectors side by side on the photo bundle: faces found, and time per photo.

Three detectors run interleaved in one process on the same photos, with the same threads:
facezoo's YuNet and facezoo's MTCNN through :func:`facezoo.detect_faces` (image loading from the
file included, the scores each shipped framing keeps), and a bare YuNet-n, the authors' ONNX file
on ONNX Runtime with a few lines of numpy (no resizing, no facezoo code): the reference for
facezoo's overhead. Recall and precision are measured on the six group photos against
``benchmarks/group_faces.json`` (faces checked by eye): a detection matches a face when each
box's centre lies inside the other box (box styles differ between detectors, so IoU would
penalise a detector for drawing its box taller); every single-face portrait is checked too.

Example:
    FACEZOO_DATA=../shared/data python benchmarks/detectors.py --threads 2 --repeats 5
    python benchmarks/detectors.py --sides 480 640 800 960 1280      # recall against the longest side
    python benchmarks/detectors.py --landmarks                       # five-point error on P1's test frames
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facezoo._detect import detect_faces, get_detector
from facezoo._images import load_image
from facezoo.detection.boxes import nms
from facezoo.detection.yunet import ONNX_PATH, decode

LABELS = Path(__file__).with_name("group_faces.json")
FRAMINGS = {
    "yunet": 0.5,
    "mtcnn": 0.9,
}  # detector → min_face_score of the shipped framings


def photos_dir() -> Path:
    root = os.environ.get("FACEZOO_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(root) / "photos"


def bare_yunet(threads: int):
    """The authors' ONNX file on ONNX Runtime with numpy decoding, at the photo's own size."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(ONNX_PATH), options, providers=["CPUExecutionProvider"])

    def detect(path: Path, threshold: float) -> list[tuple[float, ...]]:
        image = np.asarray(Image.open(path).convert("RGB"))
        height, width = image.shape[:2]
        batch = np.zeros((1, 3, -(-height // 32) * 32, -(-width // 32) * 32), np.float32)
        batch[0, :, :height, :width] = image[:, :, ::-1].transpose(2, 0, 1)
        faces = decode(session.run(None, {"input": batch}), 0, batch.shape[3], threshold)
        return [tuple(face[:4]) for face in faces[nms(faces[:, :4], faces[:, 4], 0.45)]]

    return detect


def matches(found: list[tuple[float, ...]], labelled: list[list[float]]) -> int:
    """How many labelled faces have a detection whose centre lies inside them, and they in it."""

    def inside(box, point) -> bool:
        return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]

    def centre(b):
        return ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)

    used: set[int] = set()
    hits = 0
    for face in labelled:
        for i, box in enumerate(found):
            if i not in used and inside(face, centre(box)) and inside(box, centre(face)):
                used.add(i)
                hits += 1
                break
    return hits


def score(boxes: dict[str, list[tuple[float, ...]]], labels: dict) -> tuple[float, float, int, int]:
    """Recall of the clear faces and precision (a partly hidden face found is not a false positive)."""
    clear = sum(len(v["clear"]) for v in labels.values())
    hit = sum(matches(boxes[name], v["clear"]) for name, v in labels.items())
    true = sum(matches(boxes[name], v["clear"] + v["partly_hidden"]) for name, v in labels.items())
    total = sum(len(boxes[name]) for name in labels)
    return hit / clear, true / max(total, 1), hit, clear


def landmark_errors(threads: int) -> None:
    """Each detector's five points on P1's 770 test frames against five points derived from the
    68 iBUG annotations (eye centres, nose tip, mouth corners), as a share of the outer-eye-corner
    distance; the frames go through :func:`facezoo.detect_faces` as the framing does."""
    from facezoo.data import load_dataset

    dataset = load_dataset("p1-keypoints", "test")
    images = [load_image(s.path) for s in dataset.samples]
    truth = np.stack([np.asarray(s.target, np.float64) for s in dataset.samples])
    five = np.stack([truth[:, 36:42].mean(1), truth[:, 42:48].mean(1), truth[:, 30], truth[:, 48], truth[:, 54]], axis=1)
    scale = np.linalg.norm(truth[:, 36] - truth[:, 45], axis=1)
    print("| detector | frames with a face | 5-point NME mean | median |\n|---|---|---|---|")
    for name, score in FRAMINGS.items():
        found = detect_faces(name, images, min_score=score, padding=0.25, runtime="onnx")
        rows = [i for i, faces in enumerate(found) if faces]
        points = np.stack([np.asarray(max(found[i], key=lambda f: f.width * f.height).landmarks) for i in rows])
        nme = np.linalg.norm(points - five[rows], axis=2).mean(1) / scale[rows]
        print(f"| {name} | {len(rows)}/{len(images)} | {nme.mean():.4f} | {np.median(nme):.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sides", type=int, nargs="*", help="instead: YuNet's recall against its max_side")
    parser.add_argument("--landmarks", action="store_true", help="instead: five-point error on P1's test frames")
    args = parser.parse_args()
    os.environ["FACEZOO_THREADS"] = str(args.threads)
    if args.landmarks:
        landmark_errors(args.threads)
        return
    labels = json.loads(LABELS.read_text())["photos"]
    folder = photos_dir()
    rows = list(csv.DictReader((folder / "manifest.csv").open()))

    if args.sides:
        from facezoo.detection import YuNet

        images = {name: np.asarray(load_image(folder / name)) for name in labels}
        for side in args.sides:
            detector = YuNet.from_pretrained(max_side=side, threads=args.threads)
            boxes = {name: [d.box for d in detector.detect([image], score_threshold=FRAMINGS["yunet"])[0]] for name, image in images.items()}
            recall, precision, hit, clear = score(boxes, labels)
            print(f"max_side {side}: recall {recall:.3f} ({hit}/{clear}), precision {precision:.3f}")
        return

    runners = {
        name: (
            lambda path, name=name: [
                f.box
                for f in detect_faces(
                    name,
                    [load_image(path)],
                    min_score=FRAMINGS[name],
                    padding=0.25,
                    runtime="onnx",
                )[0]
            ]
        )
        for name in FRAMINGS
    }
    bare = bare_yunet(args.threads)
    runners["bare yunet-n (ONNX Runtime)"] = lambda path: bare(path, FRAMINGS["yunet"])
    for name in FRAMINGS:
        get_detector(name, "onnx")  # built before timing
    paths = [folder / r["file"] for r in rows]
    times: dict[str, list[float]] = {name: [] for name in runners}
    found: dict[str, dict[str, list]] = {name: {} for name in runners}
    for _ in range(args.repeats):
        for path in paths:
            for name, run in runners.items():  # interleaved: load drifts hit all alike
                start = time.perf_counter()
                found[name][path.name] = run(path)
                times[name].append(time.perf_counter() - start)

    print(f"{len(paths)} photos × {args.repeats}, {args.threads} threads, median ms per photo (image loading included)")
    print("| detector | recall (group photos) | precision | portraits found | median ms per photo | vs bare YuNet |")
    print("|---|---|---|---|---|---|")
    reference = statistics.median(times["bare yunet-n (ONNX Runtime)"])
    for name in runners:
        recall, precision, hit, clear = score(found[name], labels)
        portraits = sum(len(found[name][r["file"]]) >= 1 for r in rows if r["faces"] == "1")
        singles = sum(r["faces"] == "1" for r in rows)
        ms = statistics.median(times[name])
        print(f"| {name} | {recall:.3f} ({hit}/{clear}) | {precision:.3f} | {portraits}/{singles} | {ms * 1000:.1f} | {ms / reference:.2f}× |")


if __name__ == "__main__":
    main()

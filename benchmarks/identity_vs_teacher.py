"""Identity's default (dlib's ResNet, ported) against the fast student, side by side.

- LFW View 2 (10 folds, 6,000 pairs) through ``predict``'s path: each model finds and frames the
  faces its own way (``facezoo.evaluate``) and the same verification code scores both; a pair
  whose face was not found counts as wrong.
- speed: faces/s of each network on ONNX Runtime (float32 and int8), batch 1 and 32, one thread,
  interleaved, on the same CelebA val faces framed for each; dlib's own network
  (``pip install '.[teachers]'``) on the port's chips beside them when dlib is installed.

Example:
    FACEZOO_DATA=../shared/data python benchmarks/identity_vs_teacher.py
"""

from __future__ import annotations

import os
import statistics
import time

os.environ["FACEZOO_THREADS"] = "1"  # before any session starts

import facezoo  # noqa: E402
from facezoo.data import load_dataset  # noqa: E402
from facezoo.data.arrays import face_arrays  # noqa: E402

PORT, STUDENT = "identity/dlib_resnet.v1", "identity/efficientnet_lite0.distilled-dlib"


def speed(repeats: int = 7) -> dict[int, dict[str, float]]:
    """faces/s per network and batch size (median of ``repeats``, the networks in turn)."""
    faces = load_dataset("celeba", "val").subset(list(range(48)))
    runs = {}
    for model_id in (PORT, STUDENT):
        for quantize in (None, "int8"):
            model = facezoo.load(model_id, runtime="onnx", quantize=quantize)
            batch = model.transform.normalize(face_arrays(faces, model.transform, progress=False).images[:32])
            runs[f"{model_id} {quantize or 'fp32'}"] = (model.network.run, batch)
    try:
        import dlib

        from facezoo.training.dlib import model_file

        network = dlib.face_recognition_model_v1(str(model_file("dlib_face_recognition_resnet_model_v1.dat")))
        chips = list(face_arrays(faces, facezoo.load(PORT).transform, progress=False).images[:32])  # the port's framing is dlib's chip
        runs["dlib (dlib-bin)"] = (network.compute_face_descriptor, chips)
    except ImportError:
        pass
    out: dict[int, dict[str, float]] = {}
    for size in (1, 32):
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(repeats):
            for name, (run, batch) in runs.items():
                start = time.perf_counter()
                run(batch[:size])
                times[name].append(time.perf_counter() - start)
        out[size] = {name: size / statistics.median(t) for name, t in times.items()}
    return out


def main() -> None:
    reports = {model_id: facezoo.evaluate(facezoo.load(model_id), "lfw", "view2").metrics for model_id in (PORT, STUDENT)}
    print(f"| | {PORT} | {STUDENT} |\n|---|---|---|")
    for key, label in (("accuracy", "LFW View 2 accuracy (10-fold)"), ("tar_at_far_1e-3", "LFW TAR @ FAR 1e-3")):
        print(f"| {label} | {reports[PORT][key]:.2%} | {reports[STUDENT][key]:.2%} |")
    rates = speed()
    for size, rate in rates.items():
        row = " | ".join(f"{rate[f'{m} fp32']:.0f} (int8 {rate[f'{m} int8']:.0f})" for m in (PORT, STUDENT))
        print(f"| faces/s, batch {size}, one thread, ONNX Runtime | {row} |")
    for size, rate in rates.items():
        ratio = rate[f"{STUDENT} fp32"] / rate[f"{PORT} fp32"]
        dlib_rate = f"; dlib itself {rate['dlib (dlib-bin)']:.0f} faces/s" if "dlib (dlib-bin)" in rate else ""
        print(f"batch {size}: the student runs {ratio:.2f}x the port's faces/s (fp32){dlib_rate}")


if __name__ == "__main__":
    main()

"""The identity student against its teacher (dlib's ResNet) on the same faces, side by side.

- LFW View 2 (10 folds, 6,000 pairs): both embed the faces MTCNN finds in the LFW images (the
  teacher its own way: dlib's box and 5-point chip; labels from the teacher cache, so
  ``pip install '.[teachers]'`` and the labelling run must have happened), the same verification
  code scores both; a pair whose face was not found counts as wrong for both.
- few-shot-five: enrol the 93 photos of ``train``, identify the 25 of ``val`` (top-1).
- speed: faces/s of the student (torch and ONNX Runtime) and the teacher on the same aligned
  faces, batch 1 and 32, one thread each, interleaved.

Example:
    FACEZOO_DATA=../shared/data python benchmarks/identity_vs_teacher.py
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

import facezoo
from facezoo.data import load_dataset
from facezoo.data.arrays import face_arrays
from facezoo.training.teachers import teacher_labels


def lfw(model) -> dict:
    from facezoo_identity.verification import verification_report

    dataset = load_dataset("lfw", "view2")
    pairs = dataset.extra["pairs"]
    faces = face_arrays(dataset, model.transform, progress=False)
    student = np.zeros((len(dataset), model.config.head["embedding_dim"]), np.float32)
    student[faces.indices] = model.task.predictions(model.forward_faces(faces.images), model.config)
    teacher = np.nan_to_num(teacher_labels("dlib-resnet", dataset, model.config.preprocess, progress=False))
    return {name: verification_report(emb, pairs) for name, emb in (("student", student), ("teacher", teacher))}


def fewshot(model) -> float:
    root = load_dataset("fewshot-five", "train")
    people: dict[str, list] = {}
    for sample in root.samples:
        people.setdefault(root.labels[sample.target], []).append(sample.path)
    model.gallery.clear()
    for name, photos in people.items():
        model.enroll(name, photos)
    val = load_dataset("fewshot-five", "val")
    hits = [model.identify(s.path)[0][0].name == val.labels[s.target] if model.predict(s.path) else False for s in val.samples]
    return float(np.mean(hits))


def speed(model, repeats: int = 5) -> dict:
    import dlib
    from facezoo_identity.teacher import CHIP_SIZE, DlibResNetTeacher

    os.environ["FACEZOO_THREADS"] = "1"
    onnx = facezoo.load(model.config.model_id, runtime="onnx")
    teacher = DlibResNetTeacher()
    dataset = load_dataset("celeba", "val").subset(list(range(64)))
    faces = face_arrays(dataset, model.transform, progress=False).images[:32]
    chips = [np.asarray(dlib.resize_image(face, CHIP_SIZE, CHIP_SIZE)) for face in faces]
    runs = {
        "student torch": lambda batch: model.network.run(model.transform.normalize(faces[:batch])),
        "student onnx": lambda batch: onnx.network.run(onnx.transform.normalize(faces[:batch])),
        "teacher": lambda batch: teacher.network.compute_face_descriptor(chips[:batch]),
    }
    out = {}
    for batch in (1, 32):
        times = {name: [] for name in runs}
        for _ in range(repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                run(batch)
                times[name].append(time.perf_counter() - start)
        out[batch] = {name: batch / statistics.median(t) for name, t in times.items()}
    return out


def main() -> None:
    import torch

    torch.set_num_threads(1)
    model = facezoo.load("identity", runtime="torch")
    results = lfw(model)
    print("| | student (facezoo) | teacher (dlib) |\n|---|---|---|")
    for key, label in (("accuracy", "LFW View 2 accuracy (10-fold)"), ("tar_at_far_1e-3", "LFW TAR @ FAR 1e-3")):
        print(f"| {label} | {results['student'][key]:.2%} | {results['teacher'][key]:.2%} |")
    print(f"| few-shot-five top-1 (student) | {fewshot(model):.0%} | |")
    for batch, rates in speed(model).items():
        print(f"| faces/s, batch {batch}, one thread | torch {rates['student torch']:.0f}, ONNX {rates['student onnx']:.0f} | {rates['teacher']:.0f} |")


if __name__ == "__main__":
    main()

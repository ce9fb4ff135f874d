"""``mtcnn-largest``: facezoo's MTCNN, keeping only the largest face of each image.

For photos of one person (selfies, ID photos), where a face in the background should not
produce a second answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from facezoo.detection import Detection, FaceDetector  # torch-free; MTCNN itself imports torch


class LargestFaceDetector(FaceDetector):
    """At most one face per image: the largest one MTCNN finds."""

    name = "mtcnn-largest"

    def __init__(self, mtcnn: FaceDetector):
        self.mtcnn = mtcnn

    def detect(self, images: Sequence) -> list[list[Detection]]:
        return [sorted(faces, key=lambda d: d.width * d.height, reverse=True)[:1] for faces in self.mtcnn.detect(images)]


def build_detector() -> LargestFaceDetector:
    from facezoo.detection import MTCNN

    return LargestFaceDetector(MTCNN.from_pretrained())

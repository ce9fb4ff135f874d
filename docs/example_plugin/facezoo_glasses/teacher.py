"""The ``glasses-ensemble`` teacher: bigger glasses models you trained, averaged, teach a small one."""

from __future__ import annotations

import os

import numpy as np

import facezoo
from facezoo import FacezooError

ENVIRONMENT = "FACEZOO_GLASSES_TEACHERS"


class EnsembleTeacher:
    """P(no glasses), P(glasses) averaged over the models named in ``$FACEZOO_GLASSES_TEACHERS``."""

    shape = (2,)

    def __init__(self, sources: list[str]):
        if not sources:
            raise FacezooError(f"set {ENVIRONMENT} to the glasses models to average (directories or hf-hub: ids, comma-separated)")
        self.models = [facezoo.load(source) for source in sources]
        self.key = "glasses-ensemble:" + ",".join(sorted(sources))

    def label(self, images, faces) -> np.ndarray:
        probabilities = [[r.probability for r in model.predict(images, faces=[[face] for face in faces])] for model in self.models]
        glasses = np.mean([[p[0] for p in per_model] for per_model in probabilities], axis=0)
        return np.stack([1.0 - glasses, glasses], axis=1).astype(np.float32)


def build_teacher() -> EnsembleTeacher:
    return EnsembleTeacher([s for s in os.environ.get(ENVIRONMENT, "").split(",") if s])

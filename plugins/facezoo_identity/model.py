"""The identity model class: verification and a small gallery on top of predict (no torch)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from facezoo import FaceModel, FacezooError, InputError

from . import IdentityResult, Match, Verification

logger = logging.getLogger(__name__)


class IdentityModel(FaceModel):
    """A :class:`facezoo.FaceModel` that compares faces and recognises enrolled people.

    Example:
        >>> model = facezoo.load("identity")                             # doctest: +SKIP
        >>> model.verify("a.jpg", "b.jpg")                               # doctest: +SKIP
        Verification(same=True, similarity=0.71, threshold=0.42)
        >>> model.enroll("obama", ["obama1.jpg", "obama2.jpg"])          # doctest: +SKIP
        >>> model.identify("group.jpg")                                  # doctest: +SKIP
        [[Match(name='obama', similarity=0.68)], ...]
    """

    def __init__(self, config, network=None):
        super().__init__(config, network)
        self.gallery: dict[str, np.ndarray] = {}

    @property
    def threshold(self) -> float:
        """Cosine-similarity threshold for :meth:`verify`, stated in config.json."""
        return float(self.config.head["threshold"])

    def embed(self, image: Any, *, detect: bool | None = None) -> np.ndarray:
        """Embedding of the main (largest) face in one image."""
        if isinstance(image, (list, tuple)):
            raise InputError(f"embed() takes one image, got a {type(image).__name__} of {len(image)}; use predict() for several")
        results = self.predict(image, detect=detect)
        if not results:
            raise InputError("no face found in the image; pass a photo with a visible face, or detect=False for a face crop")
        main = max(results, key=lambda r: r.face.width * r.face.height if r.face else 0)
        return np.asarray(main.embedding, dtype=np.float32)

    def similarity(self, a: Any, b: Any, *, detect: bool | None = None) -> float:
        """Cosine similarity of the main faces of two images, in [-1, 1]."""
        return float(self.embed(a, detect=detect) @ self.embed(b, detect=detect))

    def verify(self, a: Any, b: Any, *, detect: bool | None = None) -> Verification:
        """Same person or not: :meth:`similarity` of the main faces of two images against :attr:`threshold`.

        Example:
            >>> model.verify("a.jpg", "b.jpg")   # doctest: +SKIP
            Verification(same=True, similarity=0.71, threshold=0.42)
        """
        sim = self.similarity(a, b, detect=detect)
        return Verification(same=sim >= self.threshold, similarity=round(sim, 6), threshold=self.threshold)

    def enroll(self, name: str, images: list, *, detect: bool | None = None) -> None:
        """Add (or extend) a person in the gallery from a few photos of them.

        A photo in which no face is found is skipped with a warning; none at all is an error.
        """
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"enroll() needs the person's name as a non-empty string, got {name!r}")
        if isinstance(images, (str, bytes)) or not isinstance(images, (list, tuple)):
            images = [images]
        if not images:
            raise InputError(f"enroll({name!r}) got no images; pass a few photos of the person")
        vectors = []
        for index, result in enumerate(self.predict(list(images), detect=detect)):
            if result:
                main = max(result, key=lambda r: r.face.width * r.face.height if r.face else 0)
                vectors.append(np.asarray(main.embedding, dtype=np.float32))
            else:
                logger.warning("enroll(%r): no face found in image %d (%s); skipped", name, index, images[index])
        if not vectors:
            raise InputError(f"enroll({name!r}): no face found in any of the {len(images)} images; pass photos with a visible face")
        if name in self.gallery:
            vectors = [*self.gallery[name], *vectors]
        self.gallery[name] = np.stack(vectors)

    def identify(self, image: Any, top_k: int = 1, *, detect: bool | None = None) -> list[list[Match]]:
        """For each face in the image, the ``top_k`` closest enrolled people (best first)."""
        if not self.gallery:
            raise FacezooError("the gallery is empty: enroll people first with model.enroll(name, images)")
        return [r.matches for r in self.predict(image, detect=detect, top_k=top_k)]

    def predict(self, inputs: Any, *, batch_size: int = 32, detect: bool | None = None, faces=None, top_k: int = 3) -> list:
        """As :meth:`facezoo.FaceModel.predict`; with a gallery, each result also lists its ``top_k`` matches."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise InputError(f"top_k must be a positive whole number, got {top_k!r}")
        crops, count, single = self.prepare(inputs, detect=detect, faces=faces)
        per_image = self.predict_crops(crops, count, batch_size=batch_size, top_k=top_k)
        return per_image[0] if single else per_image

    def predict_crops(self, crops: list, count: int, *, batch_size: int = 32, top_k: int = 3) -> list[list[IdentityResult]]:
        """As :meth:`facezoo.FaceModel.predict_crops`; with a gallery, each result also lists its ``top_k`` matches."""
        results = super().predict_crops(crops, count, batch_size=batch_size)
        if not self.gallery:
            return results
        names = list(self.gallery)
        prototypes = np.stack([v.mean(axis=0) / np.linalg.norm(v.mean(axis=0)) for v in self.gallery.values()])

        def with_matches(result: IdentityResult) -> IdentityResult:
            sims = prototypes @ np.asarray(result.embedding, dtype=np.float32)
            order = np.argsort(-sims)[:top_k]
            return dataclasses.replace(result, matches=[Match(names[i], round(float(sims[i]), 6)) for i in order])

        return [[with_matches(r) for r in group] for group in results]

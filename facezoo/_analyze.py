"""``facezoo.analyze``: detect faces once, then let several task models fill in each face.

Example:
    >>> faces = facezoo.analyze("group.jpg", tasks=["age-gender", "expression"])   # doctest: +SKIP
    >>> faces[0].results["age-gender"].age                                         # doctest: +SKIP
    34.2
    >>> facezoo.annotate("group.jpg", faces).save("out.jpg")                       # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from ._images import load_image
from .errors import FacezooError
from .results import Face, FaceResult


@dataclass(frozen=True)
class FaceAnalysis:
    """One detected face and every task's result for it, keyed by task name."""

    face: Face
    results: dict[str, FaceResult] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {"face": self.face.to_dict()}
        for task, result in self.results.items():
            data = result.to_dict()
            data.pop("face", None)
            out[task] = data
        return out


def analyze(image: Any, tasks: list[str] | None = None, *, models: list | None = None) -> list[FaceAnalysis]:
    """Detect the faces of one image once and run each task's model on them.

    ``tasks`` are loaded with :func:`facezoo.load` (pretrained); pass ``models`` instead to use
    models you already hold. Faces are ordered as the detector returns them (best first).
    """
    from ._factory import list_tasks, load

    if models is None:
        models = [load(task) for task in (tasks or list_tasks())]
    if not models:
        raise FacezooError("analyze() needs at least one task or model")
    picture = load_image(image)
    detectors = {m.config.preprocess.detector for m in models}
    if None in detectors or len(detectors) != 1:
        raise FacezooError(
            f"analyze() runs one detector for all models, but these models name {sorted(map(str, detectors))}; "
            "call each model's predict() instead"
        )
    faces = models[0].detect([picture])
    records = [FaceAnalysis(face=f) for f in faces[0]]
    for model in models:
        for record, result in zip(records, model.predict(picture, faces=faces)):
            record.results[model.config.task] = result
    return records


def _caption(results: dict[str, FaceResult]) -> str:
    parts = []
    for result in results.values():
        data = result.to_dict()
        if "age" in data:
            parts.append(f"{data['age']:.0f}y {data['gender']}")
        elif "label" in data:
            parts.append(data["label"])
        elif "score" in data:
            parts.append(f"beauty {data['score']:.2f}")
        elif data.get("matches"):
            parts.append(f"{data['matches'][0]['name']} {data['matches'][0]['similarity']:.2f}")
        if not data.get("trained", True):
            parts[-1:] = [parts[-1] + " (untrained)"] if parts else []
    return ", ".join(parts)


def annotate(image: Any, faces: list[FaceAnalysis] | list[FaceResult]) -> Image.Image:
    """A copy of ``image`` with each face's box, landmarks, keypoints and labels drawn on it."""
    picture = load_image(image).copy()
    draw = ImageDraw.Draw(picture)
    width = max(2, round(max(picture.size) / 400))
    font = ImageFont.load_default(size=max(12, round(max(picture.size) / 60)))
    for item in faces:
        results = item.results if isinstance(item, FaceAnalysis) else {getattr(item, "model", "") or "result": item}
        face = item.face if isinstance(item, FaceAnalysis) else item.face
        for result in results.values():
            for x, y in getattr(result, "points", None) or []:
                draw.ellipse([x - width, y - width, x + width, y + width], fill=(0, 220, 255))
        if face is None:
            continue
        x1, y1, x2, y2 = face.box
        draw.rectangle([x1, y1, x2, y2], outline=(0, 255, 0), width=width)
        for x, y in face.landmarks:
            draw.ellipse([x - width, y - width, x + width, y + width], fill=(255, 60, 60))
        caption = _caption(results)
        if caption:
            left, top, right, bottom = draw.textbbox((0, 0), caption, font=font)
            y = max(0, y1 - (bottom - top) - 4)
            draw.rectangle([x1, y, x1 + right - left + 4, y + bottom - top + 4], fill=(0, 0, 0))
            draw.text((x1 + 2, y + 2 - top), caption, fill=(255, 255, 255), font=font)
    return picture

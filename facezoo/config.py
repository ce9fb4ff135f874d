"""The frozen configuration that travels with a model's weights as ``config.json``.

Everything that changes a model's numbers lives here: task, backbone, head arguments, labels and
the preprocessing contract. Training, evaluation and inference all read it, so they cannot drift.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import WeightsError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos")
CROPS = ("box", "align")


@dataclass(frozen=True)
class Preprocess:
    """How a face is prepared for the network.

    ``crop="box"`` crops the detected box enlarged by ``margin`` (square); ``crop="align"`` maps
    the five detected landmarks onto a canonical template with a similarity transform. Faces the
    detector scores below ``min_face_score`` are ignored. When no
    detector runs (``detector=None`` or ``predict(..., detect=False)``) the whole image is the face.

    Example:
        >>> Preprocess(input_size=(96, 96), grayscale=True).input_size
        (96, 96)
    """

    input_size: tuple[int, int] = (112, 112)  # (height, width)
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    grayscale: bool = False  # gray → 3 identical channels (models trained on gray data)
    crop: str = "box"
    margin: float = 0.2
    detector: str | None = "mtcnn"
    min_face_score: float = 0.9  # detections below this score are dropped

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if len(self.input_size) != 2 or min(self.input_size) < 8:
            raise ValueError(f"input_size must be (height, width) of at least 8 px, got {self.input_size}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {self.crop!r}")


@dataclass(frozen=True)
class ModelConfig:
    """Task, backbone, head and preprocessing of one model; serialised verbatim as ``config.json``.

    ``trained`` says whether the weights were trained by facezoo (``False`` for a model built with
    ``pretrained=False``: its outputs are meaningless until it is trained).

    Example:
        >>> cfg = ModelConfig(task="beauty", backbone="resnet18", tag="demo")
        >>> cfg.model_id
        'beauty/resnet18.demo'
        >>> ModelConfig.from_dict(cfg.to_dict()) == cfg
        True
    """

    task: str
    backbone: str
    tag: str | None = None
    head: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    preprocess: Preprocess = field(default_factory=Preprocess)
    trained: bool = False
    license: str | None = None
    datasets: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)  # where metrics were measured, and the CI smoke subset
    facezoo_version: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.preprocess, dict):
            object.__setattr__(self, "preprocess", Preprocess(**self.preprocess))
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "datasets", tuple(self.datasets))
        if not self.facezoo_version:
            from . import __version__

            object.__setattr__(self, "facezoo_version", __version__)

    @property
    def model_id(self) -> str:
        """Canonical id ``task/backbone.tag`` (``task/backbone`` when untagged)."""
        return f"{self.task}/{self.backbone}" + (f".{self.tag}" if self.tag else "")

    def replace(self, **changes: Any) -> ModelConfig:
        """Return a copy with some fields changed (``preprocess`` may be a dict of its fields)."""
        if isinstance(changes.get("preprocess"), dict):
            changes["preprocess"] = dataclasses.replace(self.preprocess, **changes["preprocess"])
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> ModelConfig:
        """Build from :meth:`to_dict` output; unknown keys raise, naming the source."""
        known = {f.name for f in dataclasses.fields(cls)}
        extra = set(data) - known
        if extra:
            raise WeightsError(
                f"{source} has keys this facezoo version does not know: {sorted(extra)}. "
                "It was probably written by a newer facezoo: upgrade with pip install -U facezoo."
            )
        missing = {"task", "backbone"} - set(data)
        if missing:
            raise WeightsError(f"{source} lacks the required keys {sorted(missing)}")
        data = dict(data)
        if "preprocess" in data:
            pre_known = {f.name for f in dataclasses.fields(Preprocess)}
            bad = set(data["preprocess"]) - pre_known
            if bad:
                raise WeightsError(f"{source} preprocess has unknown keys {sorted(bad)}")
            data["preprocess"] = Preprocess(**data["preprocess"])
        return cls(**data)

    def save(self, path: str | Path) -> None:
        """Write as indented JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ModelConfig:
        """Read a ``config.json`` written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise WeightsError(f"{path} does not exist: a facezoo model directory holds config.json") from None
        except json.JSONDecodeError as exc:
            raise WeightsError(f"{path} is not valid JSON ({exc})") from None
        return cls.from_dict(data, source=str(path))

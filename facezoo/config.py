"""The frozen configuration that travels with a model's weights as ``config.json``.

Everything that changes a model's numbers lives here: task, backbone, head arguments, labels and
the preprocessing contract. Training, evaluation and inference all read it, so they cannot drift.

``config.json`` states its ``schema``. A file of an older schema is brought up to :data:`SCHEMA`
by the :data:`MIGRATIONS`, one schema at a time; one of a newer schema is refused with the version
found and the advice to upgrade facezoo, so a model pushed to the Hub stays loadable by later
releases and never loads half-understood in an earlier one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import WeightsError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos")
CROPS = ("box", "align")


TEMPLATES = ("arcface",)

SCHEMA = 1
"""The ``config.json`` schema this facezoo writes, and the newest it reads (a file without
``schema`` is schema 1, the format of the configs written before the number existed)."""

MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
"""``MIGRATIONS[n]`` turns the dict of a schema-``n`` config (without its ``schema`` key) into one
of schema ``n + 1``, filling the keys that schema added with the values that reproduce the old
model's numbers. A change of the format raises :data:`SCHEMA` by one and adds its migration, a test
of it, and the configs the previous release wrote under ``tests/assets/configs/schema<n>/``."""


def _migrate(data: dict[str, Any], source: str) -> dict[str, Any]:
    """The keys of a config dict of any schema this facezoo reads, brought up to :data:`SCHEMA`."""
    version = data.get("schema", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise WeightsError(f"{source}: schema must be a whole number of at least 1, got {version!r}")
    if version > SCHEMA:
        from . import __version__

        writer = data.get("facezoo_version")
        raise WeightsError(
            f"{source} has config schema {version}, and facezoo {__version__} reads schemas up to {SCHEMA}"
            + (f"; it was written by facezoo {writer}" if isinstance(writer, str) and writer else "")
            + ": upgrade with pip install -U facezoo"
        )
    data = {key: value for key, value in data.items() if key != "schema"}
    for step in range(version, SCHEMA):
        data = MIGRATIONS[step](data)
    return data


def _number(value: Any, name: str, *, low: float | None = None, high: float | None = None, above: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if value != value or (low is not None and value < low) or (high is not None and value > high) or (above is not None and value <= above):
        bounds = [f">= {low}" if low is not None else "", f"<= {high}" if high is not None else "", f"> {above}" if above is not None else ""]
        raise ValueError(f"{name} must be {' and '.join(b for b in bounds if b)}, got {value!r}")
    return value


def _numbers(value: Any, name: str, count: int) -> tuple:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != count:
        raise ValueError(f"{name} must be a list of {count} numbers, got {value!r}")
    return tuple(_number(v, f"{name}[{i}]") for i, v in enumerate(value))


@dataclass(frozen=True)
class Preprocess:
    """How a face is found in a photo and prepared for the network: the framing contract.

    ``detector`` finds the faces (those it scores below ``min_face_score`` are ignored; an image
    with none is searched again with a black border of ``detect_padding`` × its longer side, so
    faces that fill the frame are found). ``crop="align"`` maps the five landmarks onto the named
    ``template`` with a similarity transform, shrunk by ``scale`` about the crop centre;
    ``crop="box"`` cuts the detected box enlarged by ``margin`` (square). The crop is resized to
    ``input_size`` (height, width), optionally made gray, and normalised with ``mean``/``std``.
    Training, evaluation and ``predict`` all frame faces through this one contract. When no
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
    template: str = "arcface"
    scale: float = 1.0
    detector: str | None = "mtcnn"
    min_face_score: float = 0.9
    detect_padding: float = 0.25

    def __post_init__(self) -> None:
        size = self.input_size
        if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2 or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 8 for v in size
        ):
            raise ValueError(f"input_size must be [height, width], two integers of at least 8, got {size!r}")
        object.__setattr__(self, "input_size", tuple(size))
        object.__setattr__(self, "mean", _numbers(self.mean, "mean", 3))
        object.__setattr__(self, "std", _numbers(self.std, "std", 3))
        if min(self.std) <= 0:
            raise ValueError(f"std must be three numbers above 0, got {list(self.std)}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if not isinstance(self.grayscale, bool):
            raise ValueError(f"grayscale must be true or false, got {self.grayscale!r}")
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {self.crop!r}")
        if self.template not in TEMPLATES:
            raise ValueError(f"template must be one of {TEMPLATES}, got {self.template!r}")
        object.__setattr__(self, "margin", _number(self.margin, "margin", low=0.0))
        object.__setattr__(self, "scale", _number(self.scale, "scale", above=0.0))
        object.__setattr__(self, "min_face_score", _number(self.min_face_score, "min_face_score", low=0.0, high=1.0))
        object.__setattr__(self, "detect_padding", _number(self.detect_padding, "detect_padding", low=0.0))
        if self.detector is not None and (not isinstance(self.detector, str) or not self.detector):
            raise ValueError(f"detector must be a detector name or null, got {self.detector!r}")


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
        >>> cfg.to_dict()["schema"]  # the config.json format, see SCHEMA and MIGRATIONS
        1
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
    teachers: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)  # where metrics were measured, and the CI smoke subset
    facezoo_version: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.preprocess, dict):
            object.__setattr__(self, "preprocess", Preprocess(**self.preprocess))
        for name in ("task", "backbone"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        if self.tag is not None and not isinstance(self.tag, str):
            raise ValueError(f"tag must be a string or null, got {self.tag!r}")
        for name in ("labels", "datasets", "teachers"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name} must be a list of strings, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for name in ("head", "metrics", "evaluation"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be an object (a dict), got {getattr(self, name)!r}")
        if not isinstance(self.trained, bool):
            raise ValueError(f"trained must be true or false, got {self.trained!r}")
        if self.license is not None and not isinstance(self.license, str):
            raise ValueError(f"license must be a string or null, got {self.license!r}")
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
        """Plain JSON-serialisable dict, stating the config :data:`SCHEMA` it follows."""
        return json.loads(json.dumps({"schema": SCHEMA, **dataclasses.asdict(self)}))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> ModelConfig:
        """Build from :meth:`to_dict` output of this or an older schema (see :data:`MIGRATIONS`).

        Unknown, missing or ill-typed keys raise, naming the source; so does a newer schema.
        """
        if not isinstance(data, dict):
            raise WeightsError(f"{source} must hold a JSON object, not {type(data).__name__}")
        data = _migrate(data, source)
        known = {f.name for f in dataclasses.fields(cls)}
        extra = set(data) - known
        if extra:
            raise WeightsError(
                f"{source} has keys that config schema {SCHEMA} does not define: {sorted(extra)}; "
                f"remove them (a facezoo config.json holds {', '.join(sorted(known | {'schema'}))})"
            )
        missing = {"task", "backbone", "preprocess"} - set(data)
        if missing:
            raise WeightsError(f"{source} lacks the required keys {sorted(missing)}")
        pre = data["preprocess"]
        if not isinstance(pre, dict):
            raise WeightsError(f"{source}: preprocess must be an object, got {pre!r}")
        pre_known = {f.name for f in dataclasses.fields(Preprocess)}
        if set(pre) != pre_known:
            raise WeightsError(
                f"{source}: preprocess has unknown keys {sorted(set(pre) - pre_known)} and lacks {sorted(pre_known - set(pre))}; "
                "every preprocessing setting must be stated, since it changes the model's answers"
            )
        try:
            return cls(**{**data, "preprocess": Preprocess(**pre)})
        except (TypeError, ValueError) as exc:
            raise WeightsError(f"{source}: {exc}") from None

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
        except (OSError, UnicodeDecodeError) as exc:
            raise WeightsError(f"{path} cannot be read ({exc})") from None
        return cls.from_dict(data, source=str(path))

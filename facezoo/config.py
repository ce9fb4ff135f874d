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
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._version import __version__
from .errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos")
CROPS = ("box", "align")


TEMPLATES = ("arcface", "dlib", "dlib-chip")  # facezoo.detection.align.TEMPLATES
#: The five points a face is aligned on: the detector's (eye centres, nose tip, mouth corners), or
#: those of dlib's 5-point shape predictor (eye corners, base of the nose; facezoo.detection.shape_predictor).
LANDMARKS = ("detector", "dlib-5")
#: Which points each template places: "dlib-chip" is dlib's get_face_chip for its own predictor's points.
TEMPLATE_LANDMARKS = {"arcface": "detector", "dlib": "detector", "dlib-chip": "dlib-5"}
MAX_INPUT_SIZE = 1024  # pixels per side: a face network's input, not a photo
MAX_CONFIG_BYTES = 1 << 20  # a config.json is a few KiB; a larger file is refused before it is parsed

SCHEMA = 2
"""The ``config.json`` schema this facezoo writes, and the newest it reads (a file without
``schema`` is schema 1, the format of the configs written before the number existed).

- 2: ``preprocess.landmarks`` (which five points a face is aligned on)."""


def _schema1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 added ``preprocess.landmarks``: every schema-1 model aligned on its detector's points."""
    pre = data.get("preprocess")
    return {**data, "preprocess": {"landmarks": "detector", **pre}} if isinstance(pre, dict) else data


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _schema1_to_2}
"""``MIGRATIONS[n]`` turns the dict of a schema-``n`` config (without its ``schema`` key) into one
of schema ``n + 1``, filling the keys that schema added with the values that reproduce the old
model's numbers. A change of the format raises :data:`SCHEMA` by one and adds its migration, a test
of it, and the configs the previous release wrote under ``tests/assets/configs/schema<n>/``."""


def _migrate(data: dict[str, Any], source: str) -> dict[str, Any]:
    """The keys of a config dict of any schema this facezoo reads, brought up to :data:`SCHEMA`."""
    version = data.get("schema", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"{source}: schema must be a whole number of at least 1, got {version!r}")
    if version > SCHEMA:
        writer = data.get("facezoo_version")
        raise ConfigError(
            f"{source} has config schema {version}, and facezoo {__version__} reads schemas up to {SCHEMA}"
            + (f"; it was written by facezoo {writer}" if isinstance(writer, str) and writer else "")
            + ": upgrade with pip install -U facezoo"
        )
    data = {key: value for key, value in data.items() if key != "schema"}
    for step in range(version, SCHEMA):
        data = MIGRATIONS[step](data)
    return data


def _number(value: Any, name: str, *, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a finite float within ``[low, high]``, or a :class:`ConfigError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        number = math.inf if value > 0 else -math.inf
    if not math.isfinite(number) or (low is not None and number < low) or (high is not None and number > high):
        bounds = [f"at least {low:g}" if low is not None else "", f"at most {high:g}" if high is not None else ""]
        raise ConfigError(f"{name} must be a finite number{' ' if low is not None or high is not None else ''}{' and '.join(b for b in bounds if b)}, got {number:g}")
    return number


def _numbers(value: Any, name: str, count: int) -> tuple:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != count:
        raise ConfigError(f"{name} must be a list of {count} numbers, got {value!r}")
    return tuple(_number(v, f"{name}[{i}]") for i, v in enumerate(value))


@dataclass(frozen=True)
class Preprocess:
    """How a face is found in a photo and prepared for the network: the framing contract.

    ``detector`` finds the faces (those it scores below ``min_face_score`` are ignored; an image
    with none is searched again with a black border of ``detect_padding`` × its longer side, so
    faces that fill the frame are found). ``crop="align"`` maps the five landmarks onto the named
    ``template`` with a similarity transform, shrunk by ``scale`` about the crop centre;
    ``crop="box"`` cuts the detected box enlarged by ``margin`` (square). The five points are the
    detector's (``landmarks="detector"``) or, with ``"dlib-5"``, those dlib's 5-point shape predictor
    finds from them (ported, :mod:`facezoo.detection.shape_predictor`; the template must be one for
    those points: ``"dlib-chip"``). The crop is resized to
    ``input_size`` (height, width), optionally made gray, and normalised with ``mean``/``std``.
    Training, evaluation and ``predict`` all frame faces through this one contract. When no
    detector runs (``detector=None`` or ``predict(..., detect=False)``) the whole image is the face.
    Every field is checked here: a value of the wrong type or out of its bounds (``input_size`` from 8
    to :data:`MAX_INPUT_SIZE`, ``margin`` 0–4, ``scale`` 0.1–10, ``min_face_score`` 0–1,
    ``detect_padding`` 0–1, finite ``mean``, ``std`` above 0) is a :class:`~facezoo.ConfigError`
    naming the field.

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
    landmarks: str = "detector"
    scale: float = 1.0
    detector: str | None = "yunet"
    min_face_score: float = 0.5
    detect_padding: float = 0.25

    def __post_init__(self) -> None:
        size = self.input_size
        if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2 or any(
            isinstance(v, bool) or not isinstance(v, int) or not 8 <= v <= MAX_INPUT_SIZE for v in size
        ):
            shown = size if not hasattr(size, "__len__") or len(size) <= 2 else f"a list of {len(size)}"
            raise ConfigError(f"input_size must be [height, width], two integers from 8 to {MAX_INPUT_SIZE}, got {shown!r}")
        object.__setattr__(self, "input_size", tuple(size))
        object.__setattr__(self, "mean", _numbers(self.mean, "mean", 3))
        object.__setattr__(self, "std", _numbers(self.std, "std", 3))
        if min(self.std) <= 0:
            raise ConfigError(f"std must be three numbers above 0, got {list(self.std)}")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if not isinstance(self.grayscale, bool):
            raise ConfigError(f"grayscale must be true or false, got {self.grayscale!r}")
        if self.crop not in CROPS:
            raise ConfigError(f"crop must be one of {CROPS}, got {self.crop!r}")
        if self.template not in TEMPLATES:
            raise ConfigError(f"template must be one of {TEMPLATES}, got {self.template!r}")
        if self.landmarks not in LANDMARKS:
            raise ConfigError(f"landmarks must be one of {LANDMARKS}, got {self.landmarks!r}")
        if TEMPLATE_LANDMARKS[self.template] != self.landmarks:
            raise ConfigError(
                f"template {self.template!r} places the {TEMPLATE_LANDMARKS[self.template]!r} points, but landmarks is {self.landmarks!r}: "
                f"use a template of {[t for t, points in TEMPLATE_LANDMARKS.items() if points == self.landmarks]}"
            )
        object.__setattr__(self, "margin", _number(self.margin, "margin", low=0.0, high=4.0))
        object.__setattr__(self, "scale", _number(self.scale, "scale", low=0.1, high=10.0))
        object.__setattr__(self, "min_face_score", _number(self.min_face_score, "min_face_score", low=0.0, high=1.0))
        object.__setattr__(self, "detect_padding", _number(self.detect_padding, "detect_padding", low=0.0, high=1.0))
        if self.detector is not None and (not isinstance(self.detector, str) or not self.detector):
            raise ConfigError(f"detector must be a detector name or null, got {self.detector!r}")


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
                raise ConfigError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        if self.tag is not None and not isinstance(self.tag, str):
            raise ConfigError(f"tag must be a string or null, got {self.tag!r}")
        for name in ("labels", "datasets", "teachers"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{name} must be a list of strings, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for name in ("head", "metrics", "evaluation"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"{name} must be an object (a dict), got {getattr(self, name)!r}")
        if not isinstance(self.trained, bool):
            raise ConfigError(f"trained must be true or false, got {self.trained!r}")
        if self.license is not None and not isinstance(self.license, str):
            raise ConfigError(f"license must be a string or null, got {self.license!r}")
        if not self.facezoo_version:
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
            raise ConfigError(f"{source} must hold a JSON object, not {type(data).__name__}")
        data = _migrate(data, source)
        known = {f.name for f in dataclasses.fields(cls)}
        extra = set(data) - known
        if extra:
            raise ConfigError(
                f"{source} has keys that config schema {SCHEMA} does not define: {sorted(extra)}; "
                f"remove them (a facezoo config.json holds {', '.join(sorted(known | {'schema'}))})"
            )
        missing = {"task", "backbone", "preprocess"} - set(data)
        if missing:
            raise ConfigError(f"{source} lacks the required keys {sorted(missing)}")
        pre = data["preprocess"]
        if not isinstance(pre, dict):
            raise ConfigError(f"{source}: preprocess must be an object, got {pre!r}")
        pre_known = {f.name for f in dataclasses.fields(Preprocess)}
        if set(pre) != pre_known:
            raise ConfigError(
                f"{source}: preprocess has unknown keys {sorted(set(pre) - pre_known)} and lacks {sorted(pre_known - set(pre))}; "
                "every preprocessing setting must be stated, since it changes the model's answers"
            )
        try:
            return cls(**{**data, "preprocess": Preprocess(**pre)})
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def save(self, path: str | Path) -> None:
        """Write as indented JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ModelConfig:
        """Read a ``config.json`` written by :meth:`save`; one over :data:`MAX_CONFIG_BYTES` is refused unread."""
        path = Path(path)
        try:
            with path.open("rb") as file:
                text = file.read(MAX_CONFIG_BYTES + 1)
        except FileNotFoundError:
            raise ConfigError(f"{path} does not exist: a facezoo model directory holds config.json") from None
        except OSError as exc:
            raise ConfigError(f"{path} cannot be read ({exc})") from None
        if len(text) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES >> 10} KiB; a facezoo config.json is a few KiB: is it the right file?")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON ({exc})") from None
        except RecursionError:
            raise ConfigError(f"{path} nests JSON too deeply to parse; a facezoo config.json is an object a few levels deep") from None
        except ValueError as exc:  # not UTF-8, or an integer of thousands of digits
            raise ConfigError(f"{path} cannot be parsed ({exc})") from None
        return cls.from_dict(data, source=str(path))

"""Model cards generated from structured data, never hand-edited numbers.

A card is a ``README.md`` with YAML front matter (``library_name: facezoo``, licence, datasets,
tags, ``model-index``) built with ``huggingface_hub.ModelCardData``, and a body rendered from
:class:`CardInfo`: intended use, limitations, data and its terms, protocol, and the measured
metrics beside published baselines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import _plugins
from .config import ModelConfig


@dataclass(frozen=True)
class Measured:
    """A number facezoo's own evaluation measured."""

    metric: str
    value: float
    dataset: str
    split: str
    protocol: str = ""


@dataclass(frozen=True)
class Baseline:
    """A published number to compare against, with its source (from docs/anchors)."""

    name: str
    metric: str
    value: float
    source: str
    note: str = ""


@dataclass(frozen=True)
class CardInfo:
    """Everything a card says beyond the config.

    Example:
        >>> info = CardInfo(summary="Scores attractiveness on SCUT-FBP5500's 1-5 scale.")
        >>> "facezoo" in model_card(ModelConfig(task="beauty", backbone="resnet18"), info)
        True
    """

    summary: str = ""
    intended_use: str = ""
    limitations: str = ""
    data: str = ""
    training: str = ""
    measured: tuple[Measured, ...] = ()
    baselines: tuple[Baseline, ...] = ()
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)  # more titled sections, in order


def _slug(text: str) -> str:
    """A YAML-friendly licence name from the terms text (the full text goes into the card body)."""
    return "-".join("".join(c if c.isalnum() else " " for c in text.split(":")[0].lower()).split()) + "-terms"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def usage(config: ModelConfig) -> str:
    """How to load this model: by its id when a plugin registers it, else from its directory or the Hub."""

    try:
        registered = config.model_id in _plugins.registry().names("model")
    except Exception:  # noqa: BLE001 - a card must render even when plugins are broken
        registered = False
    if registered:
        where = repr(config.model_id)
        note = ""
    else:
        where = '"path/to/this-directory"'
        note = '  # or "hf-hub:org/name" once pushed with model.push_to_hub'
    return f"```python\nimport facezoo\nmodel = facezoo.load({where}){note}\nprint(model.predict('photo.jpg'))\n```"


def model_card(config: ModelConfig, info: CardInfo | None = None) -> str:
    """Render the ``README.md`` card of a model."""
    from huggingface_hub import EvalResult, ModelCardData

    info = info or CardInfo()
    results = [
        EvalResult(
            task_type=config.task,
            dataset_type=m.dataset,
            dataset_name=m.dataset,
            dataset_split=m.split,
            metric_type=m.metric,
            metric_value=round(float(m.value), 4),
            metric_name=f"{m.metric} ({m.protocol})" if m.protocol else m.metric,
        )
        for m in info.measured
    ]
    data = ModelCardData(
        library_name="facezoo",
        license="other" if config.license else "apache-2.0",
        license_name=_slug(config.license) if config.license else None,
        datasets=list(config.datasets) or None,
        tags=["facezoo", "face", config.task, config.backbone],
        model_name=config.model_id,
        eval_results=results or None,
    )
    status = (
        "Trained by facezoo."
        if config.trained
        else "**Untrained: random weights.** Its outputs mean nothing until it is trained with `facezoo train`."
    )
    parts = [
        f"---\n{data.to_yaml()}\n---",
        f"# {config.model_id}",
        info.summary or f"A facezoo `{config.task}` model on the timm backbone `{config.backbone}`.",
        status,
        usage(config),
    ]
    pre = config.preprocess
    if pre.detector:
        framing = f"Faces found by `{pre.detector}` (score ≥ {pre.min_face_score}; an image with none is searched again with a {pre.detect_padding:g} border), "
        points = "dlib's five points (its 5-point shape predictor, ported, started from the detector's landmarks)" if pre.landmarks == "dlib-5" else "the five landmarks"
        framing += f"aligned on {points} (template `{pre.template}`, scale {pre.scale:g})" if pre.crop == "align" else f"cut as the box plus {pre.margin:g} margin"
    else:
        framing = "No detector: the whole image is the face"
    parts.append(
        "## Preprocessing\n"
        f"{framing}; input {pre.input_size[1]}×{pre.input_size[0]} {pre.interpolation}, {'grayscale, ' if pre.grayscale else ''}"
        f"mean {pre.mean}, std {pre.std}. Stored in config.json and applied identically in training, evaluation and inference."
    )
    if config.license:
        parts.append(f"## Licence\nThese weights learnt from data and models with these terms: {config.license}")
    for title, text in (
        ("Intended use", info.intended_use),
        ("Limitations", info.limitations),
        ("Training data and terms", info.data),
        ("Training", info.training),
    ):
        if text:
            parts.append(f"## {title}\n{text}")
    if info.measured:
        parts.append(
            "## Measured by facezoo\n"
            + _table(
                ["metric", "value", "dataset", "split", "protocol"],
                [[m.metric, f"{m.value:.4g}", m.dataset, m.split, m.protocol] for m in info.measured],
            )
        )
    if info.baselines:
        parts.append(
            "## Published baselines (for comparison)\n"
            + _table(
                ["model", "metric", "value", "source", "note"],
                [[b.name, b.metric, f"{b.value:.4g}", b.source, b.note] for b in info.baselines],
            )
        )
    for title, text in info.sections.items():
        parts.append(f"## {title}\n{text}")
    if info.groups:
        metrics = sorted({k for g in info.groups.values() for k in g})
        parts.append(
            "## Per-group metrics\n"
            + _table(["group", *metrics], [[g, *(f"{v.get(k, float('nan')):.4g}" for k in metrics)] for g, v in sorted(info.groups.items())])
        )
    return "\n\n".join(parts) + "\n"

"""The card of a trained model (what it learnt from, how, and what facezoo measured) and its curves."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from .. import _plugins
from .._model_dir import read_config
from ..cards import CardInfo, model_card
from ..errors import MissingExtraError
from .settings import TrainSettings, command_line

logger = logging.getLogger(__name__)


def _table(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)])


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _start_of(init: str) -> str:
    if Path(init).is_dir():
        return f"the backbone of `{read_config(init).model_id}` (a face-trained facezoo model)"
    return f"`{Path(init).name}`"


def training_card(config, settings: TrainSettings, history: list[dict[str, Any]], reports: list, summary: dict[str, Any]) -> str:
    """The card of a model trained by :func:`facezoo.train`, from its settings and measurements."""
    registry = _plugins.registry()
    task = registry.get("task", settings.task)
    minutes = sum(r.get("seconds", 0.0) for r in history) / 60
    head_epochs = sum(r["stage"] == "head" for r in history)
    machine = summary.get("machine", {})
    where = f" on {machine['cpus']} CPU cores" + (f" and {machine['gpu']}" if machine.get("gpu") else "") if machine else ""
    init = {"imagenet": "ImageNet weights", "random": "random weights"}.get(settings.init) or _start_of(settings.init)
    frozen = f", the first {settings.freeze} backbone stages frozen (their outputs cached once per face and view)" if settings.freeze else ""
    teacher = registry.get("teacher", settings.teacher) if settings.teacher else None
    sources = summary.get("sources", {})
    data_lines = [f"- `{name}`: {count} faces" for name, count in sources.items()]
    data = (
        "Faces framed exactly as `predict` frames them (detector, then the crop in config.json); images where no face "
        "was found are left out.\n" + "\n".join(data_lines)
    )
    if teacher and settings.gt_weight == 0:
        data += f"\n\nTargets: the labels of the teacher `{teacher.name}` ({teacher.summary}) on every face; the datasets' labels are not used."
    elif teacher:
        data += (
            f"\n\nTargets: the datasets' labels and the labels of the teacher `{teacher.name}` ({teacher.summary}) on every face, "
            f"mixed {settings.gt_weight:g} : {1 - settings.gt_weight:g} where a face has both."
        )
    training = (
        f"Backbone `{config.backbone}` from {init}; {head_epochs} epochs of the head on frozen pooled features, then "
        f"{len(history) - head_epochs} epochs of fine-tuning{frozen} (AdamW, one-cycle, peak lr {settings.finetune_lr}, "
        f"batch {settings.batch_size}{', mirror images and small moves' if settings.augment else ''}). The best epoch on "
        f"{summary.get('validation', 'the validation faces')} by {(settings.monitor or task.monitor[0]).partition(':')[0]} is kept. "
        f"Training time {minutes:.0f} min{where}.\n\n```bash\n{command_line(settings)}\n```"
    )
    for change in summary.get("reschedules", []):
        training += (
            f"\n\nThe run was planned for {change['from']} fine-tuning epochs and changed to {change['to']} after epoch "
            f"{change['after_epoch']} (the rest of the one-cycle schedule followed the new length)."
        )
    if summary.get("calibrated"):
        training += f"\n\nFitted after training on `{summary['calibrated']['on']}`: " + ", ".join(
            f"{k} = {_fmt(v)}" for k, v in summary["calibrated"].items() if k != "on"
        )
    return measured_card(config, settings, reports, data=data, training=training)


def measured_card(config, settings: TrainSettings, reports: list, *, data: str, training: str, summary: str | None = None) -> str:
    """The card of a model trained with ``settings``: ``data`` and ``training`` describe what it
    learnt from and how; every other section comes from ``reports``, measured on the shipped weights
    (the first one is the headline), and the ONNX measurements in ``config.evaluation``."""
    registry = _plugins.registry()
    task = registry.get("task", settings.task)
    teacher = registry.get("teacher", settings.teacher) if settings.teacher else None
    measured = [m for report in reports for m in report.measured()]
    sections: dict[str, str] = {}
    for report in reports:
        notes = []
        if "detected" in report.extra:
            notes.append(f"a face was found in {report.extra['detected']:.1%} of the {report.extra['images']} images; metrics are over those faces")
        side = report.extra.get("side_by_side")
        if side:
            names = sorted(set(side["student"]) & set(side["teacher"]) - {"name"})
            sections[f"Student and teacher on the same {side['faces']} faces ({report.dataset}/{report.split})"] = _table(
                ["metric", "this model", f"teacher `{side['teacher']['name']}`"], [[n, _fmt(side["student"][n]), _fmt(side["teacher"][n])] for n in names]
            )
        confusion = report.extra.get("confusion_matrix")
        if confusion and report is reports[0]:
            labels = confusion["labels"]
            sections[f"Confusion matrix ({report.dataset}/{report.split}, rows true, columns predicted)"] = _table(
                ["", *labels], [[labels[i], *map(str, row)] for i, row in enumerate(confusion["rows_true_cols_pred"])]
            )
        if notes:
            sections.setdefault("Notes on the measurements", "")
            sections["Notes on the measurements"] += "".join(f"- {report.dataset}/{report.split}: {n}\n" for n in notes)
    runtimes = config.evaluation.get("onnx")
    if runtimes and reports:
        names = sorted(runtimes["fp32"])
        int8 = runtimes.get("int8")
        header = ["metric", "torch (float16 weights)", f"ONNX Runtime float32 (opset {runtimes['opset']})"] + (["ONNX int8 (static QDQ)"] if int8 else [])
        rows = [[n, _fmt(reports[0].metrics.get(n, float("nan"))), _fmt(runtimes["fp32"][n])] + ([_fmt(int8["metrics"].get(n, float("nan")))] if int8 else []) for n in names]
        verdict = ""
        if int8:
            verdict = (
                "\n\nThe int8 model ships (`model.int8.onnx`, `facezoo.load(..., runtime='onnx', quantize='int8')`): it loses no more than the task allows."
                if int8["kept"]
                else "\n\nThe int8 model lost more than the task allows (" + ", ".join(f"{k} {v:+.4g}" for k, v in int8["loss"].items()) + ") and does not ship."
            )
        sections[f"On ONNX Runtime ({reports[0].dataset}/{reports[0].split}, the same protocol)"] = _table(header, rows) + verdict
    test_spec = registry.get("dataset", reports[0].dataset) if reports and reports[0].dataset in registry.names("dataset") else None
    groups = reports[0].groups if reports else {}
    limitations = "Accuracy on populations, cameras and framings unlike the training data can be lower (see the per-group metrics and the checks above)."
    if groups:
        gap = reports[0].largest_gap(task.monitor[0])
        if gap:
            limitations += f" Largest per-group gap in {task.monitor[0]}: {gap[2]:.3g} ({gap[0]} vs {gap[1]})."
    info = CardInfo(
        summary=summary or f"{task.summary}, trained by facezoo on {', '.join(config.datasets)}" + (f" with the teacher `{teacher.name}`." if teacher else "."),
        intended_use="Research and demos of face analysis. Not for decisions about people. The terms of the data and teachers it learnt from (Licence) apply.",
        limitations=limitations,
        data=data,
        training=training,
        measured=tuple(measured),
        baselines=tuple(test_spec.baselines) if test_spec else (),
        groups=groups,
        sections=sections,
    )
    return model_card(config, info)


class TensorBoardCurves:
    """The training curves as TensorBoard scalars (the ``tensorboard`` extra: tensorboardX), written
    as each epoch ends: ``loss/train``, ``loss/val`` and ``val/<metric>``, against the epoch's row in
    the run's history (head epochs first, then fine-tuning), so a resumed run continues its curves.

    Example:
        >>> curves = TensorBoardCurves("runs/tb")                                # doctest: +SKIP
        >>> curves.write(1, {"stage": "head", "train_loss": 0.9, "val_pc": 0.7})  # doctest: +SKIP
    """

    def __init__(self, directory: str | Path):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise MissingExtraError("tensorboardX", "tensorboard", "training curves for TensorBoard (--tensorboard)") from None
        # tensorboardX names event files by the second and the host only: a run resumed within the
        # same second would overwrite the curves of the one before. A suffix of its own keeps both.
        self.writer = SummaryWriter(str(directory), filename_suffix=f".{uuid.uuid4().hex[:12]}")

    def write(self, step: int, row: dict[str, Any]) -> None:
        for key, value in row.items():
            if key in ("stage", "epoch", "seconds") or not isinstance(value, (int, float)):
                continue
            tag = "loss/train" if key == "train_loss" else "loss/val" if key == "val_loss" else f"val/{key.removeprefix('val_')}"
            self.writer.add_scalar(tag, float(value), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def plot_history(history: list[dict[str, Any]], path: Path) -> Path | None:
    """Loss and validation-metric curves as a PNG (needs the ``plot`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("training curves need matplotlib: pip install 'facezoo[plot]'")
        return None
    if not history:
        return None
    metrics = sorted({k for row in history for k in row if k.startswith("val_") and k != "val_loss"})[:6]
    fig, axes = plt.subplots(1, 1 + len(metrics), figsize=(4 * (1 + len(metrics)), 3.2))
    axes = np.atleast_1d(axes)
    x = np.arange(1, len(history) + 1)
    axes[0].plot(x, [r["train_loss"] for r in history], label="train loss")
    if all("val_loss" in r for r in history):
        axes[0].plot(x, [r["val_loss"] for r in history], label="val loss")
    for ax, name in zip(axes[1:], metrics, strict=True):
        ax.plot(x, [r.get(name, np.nan) for r in history])
        ax.set_title(name[4:])
    head_epochs = sum(r["stage"] == "head" for r in history)
    for ax in axes:
        if 0 < head_epochs < len(history):
            ax.axvline(head_epochs + 0.5, color="gray", linestyle=":", label="fine-tune starts")
        ax.set_xlabel("epoch")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

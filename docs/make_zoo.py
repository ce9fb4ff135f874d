"""Regenerate the table in docs/zoo.md from the shipped models' config.json (never typed by hand).

Usage: python docs/make_zoo.py
"""

from __future__ import annotations

import re
from pathlib import Path

import facezoo
from facezoo import _plugins

BEGIN, END = "<!-- zoo-table:begin -->", "<!-- zoo-table:end -->"
KEY_METRICS = {
    "beauty": ("pc", "mae", "rmse"),
    "expression": ("accuracy", "mean_class_recall"),
    "age-gender": ("age_mae", "gender_accuracy"),
    "keypoints": ("nme", "rmse_px"),
    "identity": ("accuracy", "tar_at_far_1e-3"),
}


def table() -> str:
    rows = ["| model | default | test protocol | metrics | weights |", "|---|---|---|---|---|"]
    for model_id in facezoo.list_models(pretrained=True):
        spec = _plugins.registry().get("model", model_id)
        config = facezoo.ModelConfig.load(Path(spec.source) / "config.json")
        evaluation = config.evaluation
        names = KEY_METRICS.get(config.task, tuple(config.metrics))
        metrics = ", ".join(f"{n} {config.metrics[n]:.4g}" for n in names if n in config.metrics)
        size = (Path(spec.source) / "model.safetensors").stat().st_size / 2**20
        where = f"{evaluation.get('dataset', '?')}/{evaluation.get('split', '?')} ({evaluation.get('protocol', '?')}, n={evaluation.get('count', '?')})"
        rows.append(f"| `{model_id}` | {'yes' if spec.default else ''} | {where} | {metrics} | {size:.1f} MiB |")
    return "\n".join(rows)


def main() -> None:
    path = Path(__file__).with_name("zoo.md")
    text = path.read_text()
    new = re.sub(f"{re.escape(BEGIN)}.*?{re.escape(END)}", f"{BEGIN}\n{table()}\n{END}", text, flags=re.S)
    path.write_text(new)
    print(table())


if __name__ == "__main__":
    main()

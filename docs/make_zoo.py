"""Regenerate the tables in docs/zoo.md from the shipped models' config.json (never typed by hand).

Usage: python docs/make_zoo.py
"""

from __future__ import annotations

import re
from pathlib import Path

import facezoo
from facezoo import _plugins

BEGIN, END = "<!-- zoo-table:begin -->", "<!-- zoo-table:end -->"


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _metrics(metrics: dict, keep=lambda name: True) -> str:
    return ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items() if keep(k))


def table() -> str:
    headline = ["| model | test split, through the detector | faces found | metrics | weights |", "|---|---|---|---|---|"]
    checks = ["| model | check | metrics |", "|---|---|---|"]
    teachers = ["| model | teacher, same faces | student | teacher |", "|---|---|---|---|"]
    runtimes = ["| model | ONNX Runtime float32 | int8 (static QDQ) |", "|---|---|---|"]
    main = lambda name: not re.search(r"_\d+(-\d+|\+)$|recall_|nme_|std|threshold|fitted", name)  # noqa: E731
    for model_id in facezoo.list_models(pretrained=True):
        spec = _plugins.registry().get("model", model_id)
        config = facezoo.ModelConfig.load(Path(spec.source) / "config.json")
        evaluation = config.evaluation
        files = [p for p in Path(spec.source).iterdir() if p.suffix in (".safetensors", ".onnx")]
        size = " + ".join(f"{p.name} {p.stat().st_size / 2**20:.1f} MiB" for p in sorted(files))
        found = f"{evaluation['detected']:.1%}" if evaluation.get("detected") is not None else "—"
        where = f"{evaluation.get('dataset')}/{evaluation.get('split')} (n={evaluation.get('count')})"
        headline.append(f"| `{model_id}`{' (default)' if spec.default else ''} | {where} | {found} | {_metrics(config.metrics, main)} | {size} |")
        for name, metrics in evaluation.get("checks", {}).items():
            checks.append(f"| `{model_id}` | {name} | {_metrics(metrics, main)} |")
        if "teacher" in evaluation:
            side = evaluation["teacher"]
            names = [n for n in side["student"] if n in side["teacher"] and main(n)]
            student = ", ".join(f"{n} {_fmt(side['student'][n])}" for n in names)
            teacher = ", ".join(f"{n} {_fmt(side['teacher'][n])}" for n in names)
            teachers.append(f"| `{model_id}` | `{side['teacher']['name']}`, {side['faces']} faces | {student} | {teacher} |")
        if "onnx" in evaluation:
            onnx = evaluation["onnx"]
            int8 = onnx.get("int8")
            verdict = f"{_metrics(int8['metrics'], main)} ({'ships' if int8['kept'] else 'not shipped: loses ' + _metrics(int8['loss'])})" if int8 else "—"
            runtimes.append(f"| `{model_id}` | {_metrics(onnx['fp32'], main)} | {verdict} |")
    parts = ["### Headline: the test split on the path `predict` takes", *headline, "", "### Cross-dataset and second-protocol checks", *checks]
    parts += ["", "### Students and their teachers on the same faces", *teachers, "", "### The same models on ONNX Runtime", *runtimes]
    return "\n".join(parts)


def main() -> None:
    path = Path(__file__).with_name("zoo.md")
    text = path.read_text()
    new = re.sub(f"{re.escape(BEGIN)}.*?{re.escape(END)}", lambda _: f"{BEGIN}\n{table()}\n{END}", text, flags=re.S)
    path.write_text(new)
    print(table())


if __name__ == "__main__":
    main()

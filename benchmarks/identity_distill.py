"""The identity student vs its dlib teacher, side by side in one run, on this CPU.

LFW View 2 (10-fold accuracy and TAR at FAR 1e-3, same pairs, same facezoo verification code),
the few-shot gallery (enrol ``fewshot-five/train``, identify ``fewshot-five/val``: the student
through ``enroll``/``identify`` with its MTCNN alignment, the teacher through dlib's own HOG
detector and 5-point alignment), and embedding throughput at batch 32 and 1 as ratios.

Usage (the teacher needs ``pip install 'facezoo[distill]'``):
    FACEZOO_DATA=../shared/data python benchmarks/identity_distill.py [MODEL] [--json OUT]
    python benchmarks/identity_distill.py --docs   # docs/identity.md table from the shipped config
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch

import facezoo
from facezoo.distill import compare, comparison_table

DOCS = Path(__file__).resolve().parents[1] / "docs" / "identity.md"
BEGIN, END = "<!-- identity-table:begin -->", "<!-- identity-table:end -->"


def write_docs(model) -> str:
    """Put the table measured at export time (config.json) into docs/identity.md."""
    table = comparison_table(model.config.evaluation["versus_teacher"])
    block = f"{BEGIN}\nMeasured for `{model.config.model_id}` at export time (`evaluation.versus_teacher` in its config.json):\n\n{table}\n{END}"
    DOCS.write_text(re.sub(f"{re.escape(BEGIN)}.*?{re.escape(END)}", block, DOCS.read_text(), flags=re.S))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", default="identity", help="student: model id, directory or task (default: identity)")
    parser.add_argument("--data", help="data root (default: $FACEZOO_DATA)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--faces", type=int, default=128, help="LFW face crops timed per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the measurements here")
    parser.add_argument("--docs", action="store_true", help="only write the export-time table into docs/identity.md")
    args = parser.parse_args()
    model = facezoo.load(args.model)
    if args.docs:
        print(write_docs(model))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.time()
    table = compare(model, data_root=args.data, throughput_faces=args.faces, repeats=args.repeats)
    table["model"] = model.config.model_id
    print(f"{model.config.model_id} vs dlib teacher ({time.time() - start:.0f} s)\n")
    print(comparison_table(table))
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()

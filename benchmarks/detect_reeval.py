"""Re-evaluate every shipped task model through detect → crop → predict on the raw test images
and compare with the pre-cropped protocol of its card (issue: raw photos in).

Usage: FACEZOO_DATA=../shared/data python benchmarks/detect_reeval.py [--limit N]
Prints a markdown table: metric pre-cropped, metric through the detector, change, faces found.
"""

from __future__ import annotations

import argparse
import time

import facezoo

BUILT_IN = ("beauty", "age-gender", "expression", "keypoints", "identity")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="fixed random subset of each test split")
    parser.add_argument("--data", default=None, help="data root (default: $FACEZOO_DATA)")
    args = parser.parse_args()
    print("| model | test split | metric | pre-cropped | detect → crop | change | faces found | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for model_id in facezoo.list_models(pretrained=True):
        if model_id.split("/")[0] not in BUILT_IN:
            continue
        model = facezoo.load(model_id)
        evaluation = model.config.evaluation
        dataset, split = evaluation["dataset"], evaluation["split"]
        start = time.time()
        plain = facezoo.evaluate(model, dataset, split, data_root=args.data, limit=args.limit)
        detected = facezoo.evaluate(model, dataset, split, data_root=args.data, limit=args.limit, detect=True)
        found = detected.extra.get("detected", detected.metrics.get("detected", float("nan")))
        for name, value in plain.metrics.items():
            if name in ("pairs", "threshold", "accuracy_std"):
                continue
            other = detected.metrics[name]
            print(
                f"| `{model_id}` | {dataset}/{split} (n={plain.count}) | {name} | {value:.4f} | {other:.4f} | "
                f"{other - value:+.4f} | {found:.1%} | {time.time() - start:.0f} |"
            )


if __name__ == "__main__":
    main()

"""The identity plugin's commands: ``facezoo verify`` and ``facezoo distill``."""

from __future__ import annotations

import argparse
import json

#: The bundle's faces of no test split (never LFW, never the few-shot demo), besides CelebA's
#: training people; FER2013's 48 px gray faces carry too little identity to be worth the teacher's time.
DISTILL_SOURCES = (
    "bollywood:train",
    "utkface:train",
    "utkface:val",
    "scut-fbp5500:train",
    "p1-keypoints:train",
)


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image_a")
    parser.add_argument("image_b")
    parser.add_argument("--model", default="identity", help="identity model: task, model id, hf-hub id or directory")
    parser.add_argument("--json", action="store_true")


def run_verify(args: argparse.Namespace) -> int:
    """Same person or not: the main face of each image, cosine similarity against the model's threshold."""
    import facezoo

    verdict = facezoo.load(args.model).verify(args.image_a, args.image_b)
    if args.json:
        print(json.dumps(verdict.to_dict()))
    else:
        same = "the same person" if verdict.same else "different people"
        print(f"{same}: similarity {verdict.similarity:.3f} (threshold {verdict.threshold:.3f})")
    return 0


def add_distill_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, help="run directory (re-run the same command to resume)")
    parser.add_argument("--data", help="data root (default: $FACEZOO_DATA)")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--freeze", type=int, default=4, help="backbone stages kept frozen (cached once)")
    parser.add_argument("--stop-after", type=int)


def run_distill(args: argparse.Namespace) -> int:
    """Train an identity student on the dlib ResNet teacher's embeddings of every bundle face."""
    import facezoo

    output = facezoo.train(
        "identity",
        "celeba",
        output_dir=args.output,
        data_root=args.data,
        stop_after=args.stop_after,
        teacher="dlib-resnet",
        gt_weight=0.0,
        extra_data=DISTILL_SOURCES,
        test_dataset="lfw",
        test_split="view2",
        backbone=args.backbone,
        freeze=args.freeze,
        views=1,
        head_epochs=5,
        finetune_epochs=args.epochs,
        finetune_lr=0.001,
        monitor="pair_accuracy:max",  # verification of the held-out CelebA people, the task itself
        tag="distilled-dlib",
    )
    print(f"run directory {output}")
    return 0

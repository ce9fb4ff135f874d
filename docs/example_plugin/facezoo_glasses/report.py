"""``facezoo glasses-report FOLDER``: how many faces in a folder of photos wear glasses."""

from __future__ import annotations

import argparse
from pathlib import Path

import facezoo
from facezoo.data import IMAGE_SUFFIXES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a folder of photos")
    parser.add_argument("--model", default="glasses", help="glasses model: task, model id, hf-hub id or directory")


def run(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise facezoo.InputError(f"{folder}: not a folder of photos")
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        raise facezoo.InputError(f"{folder} holds no photos ({', '.join(IMAGE_SUFFIXES)})")
    faces = [face for per_photo in facezoo.load(args.model).predict(photos) for face in per_photo]
    print(f"{sum(face.glasses for face in faces)} of {len(faces)} faces in {len(photos)} photos wear glasses")
    return 0

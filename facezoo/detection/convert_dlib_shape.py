"""Convert dlib's 5-point shape predictor to the safetensors file facezoo ships.

Run once, offline, on ``shape_predictor_5_face_landmarks.dat`` as the ``face-recognition-models``
wheel holds it (extra ``teachers``; the file is found without importing the package), or on any
path to it::

    python -m facezoo.detection.convert_dlib_shape [path/to/shape_predictor_5_face_landmarks.dat]

The file is read by a parser of dlib's own serialisation (``dlib/serialize.h``: integers as a
length byte with a sign bit and little-endian bytes, floats as an integer mantissa and exponent;
``shape_predictor``'s fields in the order its ``serialize`` writes them). Every value is kept
exactly (float32, as dlib holds them); the parser checks the file's layout and that nothing is left
over. :mod:`facezoo.detection.shape_predictor` runs the result.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
from pathlib import Path

import numpy as np

from facezoo.detection.shape_predictor import WEIGHTS_PATH
from facezoo.errors import FacezooError
from facezoo.training.dlib import model_file

logger = logging.getLogger(__name__)

SOURCE = "shape_predictor_5_face_landmarks.dat (Davis E. King, github.com/davisking/dlib-models), as face-recognition-models 0.3.0 ships it"
DAT_NAME = "shape_predictor_5_face_landmarks.dat"


class _Reader:
    """dlib's ``deserialize`` for the types a shape predictor holds."""

    def __init__(self, data: bytes, source: str):
        self.data, self.position, self.source = data, 0, source

    def integer(self) -> int:
        if self.position >= len(self.data):
            raise FacezooError(f"{self.source} ends early: it is not a whole dlib shape predictor file")
        head = self.data[self.position]
        size = head & 0x0F
        value = int.from_bytes(self.data[self.position + 1 : self.position + 1 + size], "little")
        self.position += 1 + size
        return -value if head & 0x80 else value

    def real(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        return math.ldexp(mantissa, exponent)

    def column(self) -> list[float]:
        rows, columns = -self.integer(), -self.integer()  # dlib writes a matrix's sizes negated
        if columns != 1 or rows < 0:
            raise FacezooError(f"{self.source}: expected a column vector at byte {self.position}, got {rows}x{columns}")
        return [self.real() for _ in range(rows)]

    def count(self, what: str, limit: int) -> int:
        value = self.integer()
        if not 0 <= value <= limit:
            raise FacezooError(f"{self.source}: {value} {what} is not a dlib shape predictor's layout")
        return value


def parse(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a dlib shape predictor file: ``initial`` (P×2 mean shape, in box units),
    per cascade level ``anchors`` (F, the shape point each feature pixel hangs on) and ``deltas``
    (F×2), and per tree ``features`` (the two pixels each split compares), ``thresholds`` and
    ``leaves`` (the shape increments, P×2 each).

    Example:
        >>> arrays = parse(model_file("shape_predictor_5_face_landmarks.dat"))  # doctest: +SKIP
        >>> arrays["leaves"].shape                                             # doctest: +SKIP
        (15, 500, 16, 5, 2)
    """
    reader = _Reader(Path(path).read_bytes(), str(path))
    if reader.integer() != 1:
        raise FacezooError(f"{path}: not a version-1 dlib shape predictor")
    initial = reader.column()
    parts = len(initial) // 2
    features, thresholds, leaves = [], [], []
    for _ in range(reader.count("cascade levels", 100)):
        level_features, level_thresholds, level_leaves = [], [], []
        for _ in range(reader.count("trees", 100_000)):
            splits = [(reader.integer(), reader.integer(), reader.real()) for _ in range(reader.count("splits", 1 << 16))]
            tree_leaves = [reader.column() for _ in range(reader.count("leaves", 1 << 17))]
            if len(tree_leaves) != len(splits) + 1 or any(len(leaf) != 2 * parts for leaf in tree_leaves):
                raise FacezooError(f"{path}: a tree of {len(splits)} splits has {len(tree_leaves)} leaves; dlib's trees are full")
            level_features.append([s[:2] for s in splits])
            level_thresholds.append([s[2] for s in splits])
            level_leaves.append(tree_leaves)
        features.append(level_features)
        thresholds.append(level_thresholds)
        leaves.append(level_leaves)
    anchors = [[reader.integer() for _ in range(reader.count("feature pixels", 1 << 20))] for _ in range(reader.count("levels", 100))]
    deltas = [[(reader.real(), reader.real()) for _ in range(reader.count("feature pixels", 1 << 20))] for _ in range(reader.count("levels", 100))]
    if reader.position != len(reader.data):
        raise FacezooError(f"{path}: {len(reader.data) - reader.position} bytes after the shape predictor")
    try:
        arrays = {
            "initial": np.array(initial, np.float32).reshape(parts, 2),
            "anchors": np.array(anchors, np.uint8),
            "deltas": np.array(deltas, np.float32),
            "features": np.array(features, np.uint16),
            "thresholds": np.array(thresholds, np.float32),
            "leaves": np.array(leaves, np.float32).reshape(len(leaves), -1, len(leaves[0][0]), parts, 2),
        }
    except ValueError as error:  # ragged: levels of different sizes
        raise FacezooError(f"{path}: cascade levels of different shapes ({error})") from None
    pixels = arrays["deltas"].shape[1]
    if arrays["anchors"].max() >= parts or arrays["features"].max() >= pixels or len(arrays["anchors"]) != len(arrays["leaves"]):
        raise FacezooError(f"{path}: indices outside the shape or the feature pixels")
    return arrays


def main(argv: list[str] | None = None) -> None:
    from safetensors.numpy import save_file

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, nargs="?", help=f"the {DAT_NAME} file (default: face-recognition-models' copy)")
    args = parser.parse_args(argv)
    if args.source is None:
        args.source = model_file(DAT_NAME)
    save_file(parse(args.source), str(WEIGHTS_PATH), metadata={"source": SOURCE, "licence": "public domain (CC0), by its author"})
    logger.warning("wrote %s (sha256 %s)", WEIGHTS_PATH, hashlib.sha256(WEIGHTS_PATH.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()

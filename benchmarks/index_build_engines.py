"""``facezoo index build`` on the local engine and on Ray over the bundle's identity photos: the
same index contents, and how long each took.

    python benchmarks/index_build_engines.py --work ../bench/index [--workers 2]

Builds identity/celeba and identity/bollywood (the non-test identity sets) and LFW (a gallery
here, not a training set) with each engine (the local ones are reused when
``benchmarks/index_million.py`` or ``benchmarks/lfw_rank1.py`` built them already), then compares
face by face: the same photos and face order, boxes within half a pixel, embeddings within 1e-4.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from facezoo.data import data_root
from facezoo.index import build_index

SETS = {"celeba": ("identity", "celeba"), "bollywood": ("identity", "bollywood"), "lfw": ("lfw", "lfw")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    results = {}
    for name, parts in SETS.items():
        folder = data_root().joinpath(*parts)
        timings, contents = {}, {}
        for engine, directory in (("local", args.work / f"{name}.idx"), ("ray", args.work / f"{name}-ray.idx")):
            existed = (directory / "index.json").exists()
            start = time.perf_counter()
            index = build_index(folder, directory, engine=engine, workers=args.workers, progress=False)
            timings[engine] = "built before" if existed else round(time.perf_counter() - start, 1)
            contents[engine] = [(m["image"], m["face_index"], m["box"], v) for _, v, m in index.faces()]
        local, ray = contents["local"], contents["ray"]
        same_faces = [row[:2] for row in local] == [row[:2] for row in ray]
        box = max((float(np.abs(np.subtract(a[2], b[2])).max()) for a, b in zip(local, ray, strict=False)), default=0.0)
        vector = max((float(np.abs(a[3] - b[3]).max()) for a, b in zip(local, ray, strict=False)), default=0.0)
        results[name] = {"faces": {"local": len(local), "ray": len(ray)}, "same_faces_in_order": same_faces, "max_box_difference_px": round(box, 3),
                         "max_embedding_difference": float(f"{vector:.2g}"), "seconds": timings}
        print(name, results[name], flush=True)
    (args.work / "build_engines.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

"""Rank-1 identification on LFW with a face index: each person's second photo searched against
an index of everyone's first photos, with and without 100,000 distractors.

    python benchmarks/lfw_rank1.py --work ../bench/index [--distractors 100000]

1. ``facezoo.build_index`` over the bundle's LFW folder (7,701 photos of 4,281 people), the
   default identity model; the largest face of each photo (as facezoo's LFW evaluation takes it;
   a photo whose subject the detector misses has no face and its person no gallery entry or probe).
2. Gallery: the first photo (by file name) of every person, 4,281 faces. Probes: the second photo
   of each of the 1,680 people with two or more.
3. Distractors: the embeddings of the bundle's non-test identity faces (identity/celeba and
   identity/bollywood, people disjoint from LFW), and synthetic faces of the same distribution
   (benchmarks/index_million.py) up to ``--distractors``.
4. Rank-1 and rank-5 accuracy, and rank-1 at the model's verification threshold (a probe whose
   best match is below it counts as "not found", right or wrong), each with and without the
   distractors. LFW is a test set: nothing here is fitted on it.

Writes ``WORK/lfw_rank1.json`` and prints it; docs/index.md and the identity model's card quote it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from index_million import fit_and_sample, real_embeddings  # a sibling script: benchmarks/ is on sys.path when run

import facezoo
from facezoo.data import data_root
from facezoo.index import FaceIndex, build_index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--distractors", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    lfw = build_index(data_root() / "lfw" / "lfw", args.work / "lfw.idx", progress=True)
    largest: dict[str, tuple[float, np.ndarray]] = {}  # the photo's face, as facezoo's LFW evaluation takes it
    for _, vector, metadata in lfw.faces():
        x1, y1, x2, y2 = metadata["box"]
        area = (x2 - x1) * (y2 - y1)
        if metadata["image"] not in largest or area > largest[metadata["image"]][0]:
            largest[metadata["image"]] = (area, vector)
    photos: dict[str, list[tuple[str, np.ndarray]]] = defaultdict(list)
    for image in sorted(largest):
        photos[image.split("/")[0]].append((image, largest[image][1]))
    people = sorted(photos)
    gallery = np.stack([photos[p][0][1] for p in people])
    probes = [(p, photos[p][1][1]) for p in people if len(photos[p]) >= 2]
    real, labels = real_embeddings(args.work)
    rng = np.random.default_rng(args.seed)
    synthetic, _ = fit_and_sample(real, labels, max(0, args.distractors - len(real)), rng)
    distractors = np.concatenate([real, synthetic])[: args.distractors]
    model = facezoo.load("identity")
    results = {"model": model.config.model_id, "gallery_people": len(people), "probes": len(probes), "threshold": model.threshold}
    for name, extra in (("without_distractors", distractors[:0]), ("with_distractors", distractors)):
        directory = args.work / f"lfw-gallery-{name}.idx"
        if directory.exists():
            shutil.rmtree(directory)
        index = FaceIndex.create(directory, model)
        index.add(gallery, [{"person": p} for p in people])
        if len(extra):
            index.add(extra, [{"person": None}] * len(extra))
        start = time.perf_counter()
        found = index.search(np.stack([v for _, v in probes]), top=5)
        seconds = time.perf_counter() - start
        rank1 = np.mean([hits[0].metadata["person"] == p for (p, _), hits in zip(probes, found, strict=True)])
        rank5 = np.mean([p in [h.metadata["person"] for h in hits] for (p, _), hits in zip(probes, found, strict=True)])
        at_threshold = np.mean([hits[0].metadata["person"] == p and hits[0].similarity >= model.threshold for (p, _), hits in zip(probes, found, strict=True)])
        results[name] = {
            "indexed": len(index), "distractors": len(extra), "rank1": round(float(rank1), 4), "rank5": round(float(rank5), 4),
            "rank1_at_threshold": round(float(at_threshold), 4), "search_ms_per_probe": round(seconds / len(probes) * 1000, 2),
        }
        print(name, results[name], flush=True)
    results["date"] = time.strftime("%Y-%m-%d")
    (args.work / "lfw_rank1.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

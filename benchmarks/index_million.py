"""A face index of 1,000,000 embeddings: build time, disk, memory, top-10 latency and recall.

    python benchmarks/index_million.py --work ../bench/index [--size 1000000] [--queries 1000]

1. Real embeddings: ``facezoo.build_index`` over the bundle's non-test identity faces
   (identity/celeba: 200 people × 30, identity/bollywood: 31 × 30), the default identity model.
2. Synthetic embeddings of the same distribution, not uniform ones (which have no neighbour
   structure and are every graph index's worst case): people's centres drawn from a Gaussian
   with the real people's mean and between-person covariance, their faces from the real
   within-person covariance around them, L2-normalised; 5 faces per person. The script prints
   the real and the synthetic sets' nearest-neighbour statistics side by side.
3. ``FaceIndex.add`` of the real plus synthetic faces up to ``--size`` (one segment: one HNSW
   graph, facezoo's defaults), timed; the directory's size.
4. ``--queries`` new faces of indexed people (synthetic and real), searched one at a time in a
   fresh process that only opens the index: p50/p95 latency, recall@10 against exact search
   (a matrix product over every vector), peak memory (ru_maxrss).

Re-running reuses what is done (the real index, the big index) under ``--work``. Results go to
``WORK/results.json`` and are printed; docs/index.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import facezoo
from facezoo.data import data_root
from facezoo.index import FaceIndex, build_index

FACES_PER_PERSON = 5
EF_SEARCH = (64, 128, 256, 512)  # facezoo's default (store.HNSW_EF_SEARCH) is among them


def real_embeddings(work: Path) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of the non-test identity faces and their person labels (built once, then reused)."""
    vectors, people = [], []
    for name in ("celeba", "bollywood"):
        index = build_index(data_root() / "identity" / name, work / f"{name}.idx", progress=True)
        for _, vector, metadata in index.faces():
            if metadata["face_index"] == 0:  # the main face of each photo
                vectors.append(vector)
                people.append(f"{name}/{metadata['image'].split('/')[0]}")
    return np.asarray(vectors, np.float32), np.asarray(people)


def fit_and_sample(vectors: np.ndarray, people: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` synthetic faces (and person numbers) with the real set's between- and within-person covariance."""
    names, inverse = np.unique(people, return_inverse=True)
    centres = np.stack([vectors[inverse == k].mean(axis=0) for k in range(len(names))])
    within = np.cov((vectors - centres[inverse]).T)
    between = np.cov(centres.T)
    persons = -(-count // FACES_PER_PERSON)
    synthetic_centres = rng.multivariate_normal(centres.mean(axis=0), between, size=persons, method="cholesky").astype(np.float32)
    person = np.repeat(np.arange(persons), FACES_PER_PERSON)[:count]
    faces = np.empty((count, vectors.shape[1]), np.float32)
    for start in range(0, count, 100_000):
        stop = min(count, start + 100_000)
        noise = rng.multivariate_normal(np.zeros(vectors.shape[1]), within, size=stop - start, method="cholesky").astype(np.float32)
        faces[start:stop] = synthetic_centres[person[start:stop]] + noise
    faces /= np.linalg.norm(faces, axis=1, keepdims=True)
    return faces, person


def neighbour_stats(vectors: np.ndarray, sample: int, rng: np.random.Generator) -> dict:
    """Mean cosine of the 1st and 10th nearest neighbour (itself excluded) of ``sample`` vectors."""
    chosen = rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False)
    scores = vectors[chosen] @ vectors.T
    scores[np.arange(len(chosen)), chosen] = -np.inf
    top = -np.sort(-scores, axis=1)[:, :10]
    return {"top1": round(float(top[:, 0].mean()), 4), "top10": round(float(top[:, 9].mean()), 4)}


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    rows = []
    for start in range(0, len(queries), 100):
        scores = queries[start : start + 100] @ vectors.T
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
        rows.append(np.take_along_axis(part, order, axis=1))
    return np.concatenate(rows)


def peak_memory_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def search_run(index_dir: Path, queries_file: Path, out_file: Path) -> None:
    """In a fresh process: open the index, search the queries one by one at each ef_search, record latency and memory."""
    start = time.perf_counter()
    index = FaceIndex.open(index_dir)
    opened = time.perf_counter() - start
    queries = np.load(queries_file)
    runs = {}
    for ef in EF_SEARCH:
        index.ef_search = ef
        index.search(queries[:20], top=10)  # warm up
        latencies, found = [], []
        for query in queries:
            t = time.perf_counter()
            [hits] = index.search(query, top=10)
            latencies.append((time.perf_counter() - t) * 1000)
            found.append([hit.id for hit in hits])
        runs[ef] = {"p50_ms": round(float(np.percentile(latencies, 50)), 3), "p95_ms": round(float(np.percentile(latencies, 95)), 3), "found": found}
    out_file.write_text(json.dumps({"open_s": round(opened, 2), "search_peak_memory_mb": peak_memory_mb(), "runs": runs}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--search-only", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.search_only:
        search_run(*args.search_only)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    real, people = real_embeddings(args.work)
    print(f"real: {len(real)} faces of {len(set(people))} people", flush=True)
    synthetic, person = fit_and_sample(real, people, args.size - len(real) + args.queries, rng)
    # queries: new faces of indexed synthetic people (the index holds the first faces of each person)
    query_rows = rng.choice(np.flatnonzero(np.arange(len(person)) % FACES_PER_PERSON == FACES_PER_PERSON - 1), size=args.queries, replace=False)
    kept = np.setdiff1d(np.arange(len(synthetic)), query_rows)[: args.size - len(real)]
    vectors = np.concatenate([real, synthetic[kept]])
    queries = synthetic[query_rows]
    stats = {"real": neighbour_stats(real, 500, rng), "synthetic": neighbour_stats(synthetic[kept[:len(real)]], 500, rng)}
    print(f"nearest-neighbour cosine, real vs synthetic (same count): {stats}", flush=True)

    index_dir = args.work / f"million-{args.size}.idx"
    build: dict = json.loads((args.work / "build.json").read_text()) if (args.work / "build.json").exists() and (index_dir / "index.json").exists() else {}
    if not build:
        if index_dir.exists():
            shutil.rmtree(index_dir)
        model = facezoo.load("identity")
        index = FaceIndex.create(index_dir, model)
        start = time.perf_counter()
        index.add(vectors, [{"n": int(i)} for i in range(len(vectors))])
        build = {"build_s": round(time.perf_counter() - start, 1), "build_peak_memory_mb": peak_memory_mb()}
        (args.work / "build.json").write_text(json.dumps(build))
    disk = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
    np.save(args.work / "queries.npy", queries)
    subprocess.run([sys.executable, __file__, "--work", str(args.work), "--search-only", str(index_dir), str(args.work / "queries.npy"), str(args.work / "search.json")], check=True)
    search = json.loads((args.work / "search.json").read_text())
    truth = exact_top(vectors, queries, 10)
    for run in search["runs"].values():
        run["recall_at_10"] = round(float(np.mean([len(set(found) & set(row.tolist())) / 10 for found, row in zip(run.pop("found"), truth, strict=True)])), 4)
    results = {
        "vectors": len(vectors), "real": len(real), "width": int(vectors.shape[1]), "queries": args.queries, "neighbours": stats, **build,
        "disk_mb": round(disk / 1e6, 1), **search, "threads": os.environ.get("OMP_NUM_THREADS", "all cores"), "date": time.strftime("%Y-%m-%d"),
    }
    (args.work / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

"""ANN candidates vs exact scoring on a large synthetic catalogue: recall@k and time.

Run:  python bench/ann_recall.py [--items 200000] [--dim 64] [--customers 2000] [--k 50]
                                 [--nprobe 16 32 64] [--threads 1]

A clustered synthetic catalogue (``--clusters`` centres; item vector = centre + noise, like learned
embeddings, which are not uniform noise), each customer's ``--history`` items drawn from one to three
clusters. The customers are scored twice through ``engine.batch_scoring.score_batches`` with the
history excluded: exactly (``FactorScorer``, a dense ``[batch, items]`` block, grouped top-k) and
through ``engine.ann.AnnScorer`` (FAISS IVF inner-product index over ``[p_i | b_i]``, then exact
re-ranking of ``CANDIDATE_FACTOR × k`` candidates). recall@k = |ANN top-k ∩ exact top-k| / k, averaged
over customers. Times are wall and CPU (process) seconds; the index build is timed on its own.
No Django, no database. Writes ``bench/results/ann_recall.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommendations.engine import ann  # noqa: E402
from recommendations.engine.batch_scoring import FactorScorer, PackedHistories, score_batches  # noqa: E402


def catalogue(n_items: int, dim: int, n_customers: int, clusters: int, history: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    cluster = rng.integers(0, clusters, n_items)
    p = ((centres[cluster] + rng.normal(0, 0.7, (n_items, dim))) / np.sqrt(dim)).astype(np.float32)
    b = rng.normal(0, 0.1, n_items).astype(np.float32)
    by_cluster = np.argsort(cluster, kind="stable")
    starts = np.searchsorted(cluster[by_cluster], np.arange(clusters + 1))
    histories = []
    for _ in range(n_customers):
        pool = np.concatenate([by_cluster[starts[c]:starts[c + 1]] for c in rng.choice(clusters, rng.integers(1, 4))])
        histories.append(rng.choice(pool, min(history, len(pool)), replace=False).tolist())
    return p, b, PackedHistories.from_lists(histories)


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, round(time.perf_counter() - wall, 2), round(time.process_time() - cpu, 2)


def run(scorer, packed, k):
    items = []
    for batch in score_batches(scorer, packed, k, exclude=packed):
        items.append(batch.items)
    return np.concatenate(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--history", type=int, default=20)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[16, 32, 64, 111],
                        help="lists searched per query (the index's default is always added)")
    parser.add_argument("--threads", type=int, default=1, help="torch and faiss threads")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    import faiss

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    p, b, packed = catalogue(args.items, args.dim, args.customers, args.clusters, args.history)
    exact_scorer = FactorScorer(p, b, device="cpu")
    exact, exact_wall, exact_cpu = timed(lambda: run(exact_scorer, packed, args.k))
    index, build_wall, build_cpu = timed(lambda: ann.ItemIndex(ann.item_rows(exact_scorer)))
    default_nprobe = index.nprobe
    rows = []
    for nprobe in sorted({*args.nprobe, default_nprobe}):
        index.nprobe = nprobe
        approx, wall, cpu = timed(lambda: run(ann.AnnScorer(exact_scorer, index), packed, args.k))
        recall = float(np.mean([len(set(a) & set(e)) / args.k for a, e in zip(approx, exact)]))
        rows.append({"nprobe": nprobe, "recall_at_k": round(recall, 4), "wall_s": wall, "cpu_s": cpu,
                     "speedup_cpu": round(exact_cpu / cpu, 2), "customers_per_s": round(args.customers / wall)})
        print(json.dumps(rows[-1]))
    result = {
        "items": args.items, "dim": args.dim, "customers": args.customers, "clusters": args.clusters,
        "history": args.history, "k": args.k, "threads": args.threads,
        "candidates_per_customer": ann.CANDIDATE_FACTOR * args.k + args.history,
        "index": {"kind": "IVFFlat inner product", "nlist": index.nlist, "default_nprobe": default_nprobe,
                  "build_wall_s": build_wall, "build_cpu_s": build_cpu},
        "exact": {"wall_s": exact_wall, "cpu_s": exact_cpu, "customers_per_s": round(args.customers / exact_wall)},
        "ann": rows,
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
                    "python": platform.python_version(), "torch": torch.__version__, "faiss": faiss.__version__},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ann_recall.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

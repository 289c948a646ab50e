"""Device check: the flagship trains and scores on CUDA (if present) and on CPU.

Run:  python bench/device_check.py [--customers 100000] [--epochs 3] [--out bench/results]

1. Builds planted-cluster synthetic data (no files, no downloads) with synthetic
   "text" embeddings (cluster direction + noise) so the text path is exercised.
2. Trains the sequential model for a fixed number of epochs on each device
   (same code path; mixed precision autocast on CUDA) and times it.
3. Takes the CPU-trained weights, scores ``--customers`` synthetic customers
   (score_histories) on each device and reports timings, the largest absolute
   score difference CUDA vs CPU and the top-10 overlap.
Without CUDA it runs on CPU only and says so. Writes device_check.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommendations.engine.data import build_dataset  # noqa: E402
from recommendations.engine.device import autocast_dtype, resolve_device  # noqa: E402
from recommendations.engine.models import Sequential, load_recommender, make_recommender, top_k  # noqa: E402
from recommendations.engine.synthetic import planted_clusters  # noqa: E402


def synthetic_histories(n: int, n_clusters: int, per_cluster: int, max_len: int, seed: int) -> list[list[int]]:
    """Customers walking in order through one cluster's items (the training pattern)."""
    rng = np.random.default_rng(seed)
    clusters = rng.integers(0, n_clusters, n)
    starts = rng.integers(0, per_cluster, n)
    lengths = rng.integers(3, max_len + 1, n)
    return [
        [int(c * per_cluster + (s + j) % per_cluster) for j in range(ln)]
        for c, s, ln in zip(clusters, starts, lengths)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=3000, help="training customers")
    parser.add_argument("--clusters", type=int, default=12)
    parser.add_argument("--items-per-cluster", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    syn = planted_clusters(n_users=args.users, n_clusters=args.clusters,
                           items_per_cluster=args.items_per_cluster, min_len=20, max_len=60, seed=0)
    ds, _ = build_dataset(syn.events, item_keys=syn.item_keys)
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(args.clusters, 384))
    emb = centers[syn.item_cluster] + 0.5 * rng.normal(size=(ds.n_items, 384))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    histories = synthetic_histories(args.customers, args.clusters, args.items_per_cluster, 50, seed=1)

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    result = {"cuda_available": torch.cuda.is_available(), "devices": devices,
              "customers": args.customers, "n_items": ds.n_items, "train_events": ds.n_events,
              "epochs": args.epochs, "torch": torch.__version__, "runs": {}}
    if not torch.cuda.is_available():
        print("CUDA not available: running on CPU only.")
    else:
        result["gpu"] = torch.cuda.get_device_name(0)
        result["autocast_dtype"] = str(autocast_dtype(torch.device("cuda")))
    params = {"max_len": 50, "dim": 64, "fixed_epochs": args.epochs, "batch_size": 128, "seed": 0}
    saved = Path(tempfile.mkdtemp()) / "model"
    for dev in devices:
        device = resolve_device(dev)
        model = make_recommender("sequential", {**params, "device": dev})
        t0 = time.perf_counter()
        model.fit(ds, item_embeddings=emb)
        if device.type == "cuda":
            torch.cuda.synchronize()
        result["runs"][dev] = {"train_seconds": round(time.perf_counter() - t0, 2),
                               "epochs": model.fit_info["epochs_run"]}
        if dev == "cpu":
            model.save(saved)
        print(dev, result["runs"][dev], flush=True)

    scores = {}
    for dev in devices:
        model = load_recommender(saved)
        assert isinstance(model, Sequential)
        model.to(dev)
        model.score_histories(histories[:256])  # warm-up
        t0 = time.perf_counter()
        top_items = []
        full = np.empty((len(histories), ds.n_items), np.float32)
        for start in range(0, len(histories), 8192):
            s = model.score_histories(histories[start : start + 8192])
            full[start : start + len(s)] = s
            top_items.append(top_k(s, 10)[0])
        result["runs"][dev]["score_seconds"] = round(time.perf_counter() - t0, 2)
        result["runs"][dev]["customers_per_second"] = round(len(histories) / result["runs"][dev]["score_seconds"])
        scores[dev] = (full, np.concatenate(top_items))
        print(dev, result["runs"][dev], flush=True)
    if "cuda" in scores:
        diff = np.abs(scores["cuda"][0] - scores["cpu"][0])
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(scores["cuda"][1], scores["cpu"][1])])
        result["max_abs_score_diff"] = float(diff.max())
        result["mean_abs_score_diff"] = float(diff.mean())
        result["score_scale_std"] = float(scores["cpu"][0].std())
        result["top10_overlap"] = float(overlap)
        print(f"max |cuda - cpu| score diff {diff.max():.4g} (score std {scores['cpu'][0].std():.3g}); "
              f"top-10 overlap {overlap:.4f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "device_check.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

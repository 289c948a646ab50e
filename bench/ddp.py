"""Data-parallel training check: the sequential model fit in-process, by torchrun on 1 process, and by
torchrun on N processes (DDP; gloo on CPU, NCCL on GPUs), on the same synthetic data.

Run:  python bench/ddp.py [--users 3000] [--processes 2] [--epochs 4] [--out bench/results]

Reports per fit: wall seconds (torchrun's include starting the processes), data preparation and
seconds per epoch of steps (from the model's fit_info), the validation NDCG@10 rank 0 measured, and
test NDCG@10/HR@10 of the returned model; plus whether torchrun on 1 process gave exactly the
in-process parameters. On a shared 2-core box the N-process timings are not a speed-up measure (the
processes share the same cores); they check the path end to end. Writes ddp.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommendations.engine.data import build_dataset, leave_last_out_split  # noqa: E402
from recommendations.engine.distributed import job_write, launch  # noqa: E402
from recommendations.engine.metrics import evaluate  # noqa: E402
from recommendations.engine.models import make_recommender  # noqa: E402
from recommendations.engine.synthetic import planted_clusters  # noqa: E402


def summary(model, split, wall: float) -> dict:
    info = model.fit_info
    model.set_histories(split.train_valid)
    test = evaluate(model, split.train_valid, split.test, k=10, with_coverage=False)
    keys = ("world_size", "backend", "epochs_run", "best_epoch", "best_valid_ndcg", "prep_seconds",
            "seconds_per_epoch_steps", "seconds_per_epoch_validation", "n_chunks", "device")
    return {"wall_seconds": round(wall, 2), **{k: info.get(k) for k in keys},
            "test_ndcg@10": round(test["ndcg@10"], 4), "test_hr@10": round(test["hr@10"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--clusters", type=int, default=12)
    parser.add_argument("--items-per-cluster", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    syn = planted_clusters(n_users=args.users, n_clusters=args.clusters, items_per_cluster=args.items_per_cluster,
                           seed=0)
    ds, _ = build_dataset(syn.events, item_keys=syn.item_keys)
    split = leave_last_out_split(ds)
    text = np.eye(args.clusters, dtype=np.float32)[syn.item_cluster]
    # one thread per process: the same arithmetic in every process, so 1 process == in-process exactly
    params = {"max_epochs": args.epochs, "min_epochs": args.epochs, "seed": 0, "torch_threads": 1, "device": "auto"}
    result: dict = {"benchmark": "ddp", "load_average_before": os.getloadavg(),
                    "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                                "cuda_devices": torch.cuda.device_count()},
                    "data": {"customers": ds.n_users, "items": ds.n_items, "events": ds.n_events,
                             "valid_targets": int(len(split.valid))},
                    "params": params, "fits": {}}

    t0 = time.perf_counter()
    plain = make_recommender("sequential", params).fit(split.train, item_embeddings=text, valid=split.valid)
    result["fits"]["in_process"] = summary(plain, split, time.perf_counter() - t0)
    plain_state = {k: v.detach().cpu().clone() for k, v in plain._net.state_dict().items()}
    print("in-process", result["fits"]["in_process"], flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        job = job_write(Path(tmp) / "job", split.train, params=params, valid=split.valid, item_embeddings=text)
        for n in sorted({1, args.processes}):
            t0 = time.perf_counter()
            model = launch(job, Path(tmp) / f"out{n}", processes=n)
            result["fits"][f"torchrun_{n}"] = summary(model, split, time.perf_counter() - t0)
            if n == 1:
                state = model._net.state_dict()
                result["one_process_equals_in_process"] = all(
                    torch.equal(plain_state[k], state[k].cpu()) for k in plain_state)
            print(f"torchrun {n}", result["fits"][f"torchrun_{n}"], flush=True)
    result["load_average_after"] = os.getloadavg()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ddp.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "fits"}, indent=1))


if __name__ == "__main__":
    main()

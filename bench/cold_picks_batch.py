"""Per-batch cost of the cold stage's choice in batch scoring, once (now) vs twice (before).

Run:  python bench/cold_picks_batch.py [--customers 8192] [--items 10000] [--cold 1000] [--batch 2048]
                                       [--slots 5] [--history 20] [--algorithm popularity] [--threads 1]
                                       [--match nearest|profile]

A synthetic shard: ``--items`` catalogue items of which ``--cold`` have fewer than 5 events, random
64-d text vectors, ``--customers`` histories of ``--history`` items (popular items more often). The
model (``--algorithm``, fit on the shard) gets a cold stage with ``--slots`` slots, and the customers
are scored through ``engine.batch_scoring.score_batches`` as ``services.scoring`` does. Per batch:
the scoring itself (its scorer chooses the picks once and hands them on with the batch), and what the
old scoring added on top: choosing the same picks again for the reasons (``history_arrays`` +
``history_matrix`` + ``ColdSlots.choose``), checked equal to the handed-on picks. No Django, no
database. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommendations.engine.batch_scoring import PackedHistories, history_arrays, score_batches, scorer_for  # noqa: E402
from recommendations.engine.cold_slots import ColdSlots, ColdSlotsConfig, history_matrix  # noqa: E402
from recommendations.engine.data import build_dataset  # noqa: E402
from recommendations.engine.models import make_recommender  # noqa: E402

SIZES = {"customers": 8192, "items": 10_000, "cold": 1000, "batch": 2048, "slots": 5, "history": 20, "threads": 1}


def synthetic_shard(n_customers: int, n_items: int, n_cold: int, history: int, seed: int = 0):
    """(dataset, text vectors): warm items drawn half by a Zipf-like popularity, half uniformly (each
    gets well over 5 events at the default sizes), cold ones 0-4 events each."""
    rng = np.random.default_rng(seed)
    warm = n_items - n_cold
    weights = 1.0 / np.arange(1, warm + 1) ** 0.8
    weights = 0.5 * weights / weights.sum() + 0.5 / warm  # half uniform: warm items get >= 5 events
    events = []
    for c in range(n_customers):
        for t, item in enumerate(rng.choice(warm, size=history, p=weights)):
            events.append((f"c{c}", str(item), "purchase", float(t), None))
    for item in range(warm, n_items):
        for n in range(int(rng.integers(0, 5))):
            events.append((f"c{int(rng.integers(n_customers))}", str(item), "view", float(history + n), None))
    ds, _ = build_dataset(events, item_keys=[str(i) for i in range(n_items)])
    return ds, rng.standard_normal((n_items, 64)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, default in SIZES.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--algorithm", default="popularity")
    parser.add_argument("--match", choices=("nearest", "profile"), default="nearest",
                        help="how the stage matches cold items to a history (ColdSlotsConfig.match)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ds, text = synthetic_shard(args.customers, args.items, args.cold, args.history)
    model = make_recommender(args.algorithm).fit(ds, item_embeddings=text)
    model.set_cold_stage(ColdSlots(ColdSlotsConfig(slots=args.slots, match=args.match), text, ds.item_counts()), ds)
    packed = PackedHistories.from_lists([h.tolist() for h in ds.sequences()])
    scorer = scorer_for(model, device="cpu")

    scoring, again = [], []
    clock = time.perf_counter()
    for scored in score_batches(scorer, packed, 50, exclude=packed, batch_size=args.batch):
        scoring.append(time.perf_counter() - clock)
        t0 = time.perf_counter()  # what the old _discover_blocks did next: the same choice again
        hist = history_arrays(packed.slice(int(scored.rows[0]), int(scored.rows[-1]) + 1))
        picks = model.cold_stage.choose(hist, history_matrix(hist, model.n_items))[0]
        again.append(time.perf_counter() - t0)
        assert np.array_equal(picks, scored.cold_picks), "the handed-on picks differ from a fresh choice"
        clock = time.perf_counter()
    per_batch = {"scoring_ms": 1000 * float(np.mean(scoring)), "second_choice_ms": 1000 * float(np.mean(again))}
    per_batch["before_ms"] = per_batch["scoring_ms"] + per_batch["second_choice_ms"]
    print(json.dumps({
        "args": vars(args), "n_cold": int(model.cold_stage.cold.sum()), "batches": len(scoring),
        "per_batch": {k: round(v, 1) for k, v in per_batch.items()},
        "saved_share": round(per_batch["second_choice_ms"] / per_batch["before_ms"], 3),
        "loadavg": os.getloadavg(),
    }, indent=1))


if __name__ == "__main__":
    main()

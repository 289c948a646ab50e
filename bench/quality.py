"""Offline quality benchmark on MovieLens small: every engine model + implicit's ALS.

Run:  python bench/quality.py [--data ../shared/datasets/movielens-small] [--out bench/results]

Protocol: ratings -> events of kind "rating" (all positive), item text = title +
genres + tags, temporal leave-last-out, FULL ranking over all 9,742 movies (no
sampled negatives), seen items excluded. Each model is fit on ``split.train``
(the sequential model early-stops on ``split.valid``), then scores the test event
from the train+valid histories. ALS (the ``implicit`` package) is an outside
reference evaluated by the same ``metrics.evaluate``; it is refit on train+valid
because it has no fold-in. Writes quality.json and quality.md into --out.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommendations.engine.data import Dataset, build_dataset, leave_last_out_split  # noqa: E402
from recommendations.engine.metrics import evaluate  # noqa: E402
from recommendations.engine.models import make_recommender  # noqa: E402
from recommendations.engine.models.base import Recommender  # noqa: E402
from recommendations.engine.text import EmbeddingCache, TextEncoder, embed_with_cache, item_text  # noqa: E402

K = 10


def load_movielens(folder: Path) -> tuple[list, list[str], list[str]]:
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


class ALSReference(Recommender):
    """implicit's ALS wrapped in the engine contract, only for this benchmark."""

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
        self.model.fit(ds.csr(), show_progress=False)
        return self

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        return (self.model.user_factors[user_idx] @ self.model.item_factors.T).astype(np.float32)


def run_row(name: str, algorithm: str, params: dict, split, emb) -> dict:
    print(f"== {name}", flush=True)
    t0 = time.perf_counter()
    if algorithm == "als":
        model = ALSReference(**params).fit_matrix(split.train_valid)
        info = {}
    else:
        model = make_recommender(algorithm, params)
        model.fit(split.train, item_embeddings=emb, valid=split.valid,
                  progress=lambda p: print("   ", {k: (round(v, 4) if isinstance(v, float) else v)
                                                  for k, v in p.items()}, flush=True)
                  if algorithm == "sequential" else None)
        info = model.fit_info
        model.set_histories(split.train_valid)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = evaluate(model, split.train_valid, split.test, k=K)
    score_s = time.perf_counter() - t0
    row = {"model": name, "algorithm": algorithm, "params": params, **m,
           "train_seconds": round(train_s, 1), "score_seconds": round(score_s, 1), "fit_info": info}
    print(f"   ndcg@10={m['ndcg@10']:.4f} hr@10={m['hr@10']:.4f} cold_hr@10={m['cold_hr@10']:.4f} "
          f"train={train_s:.1f}s score={score_s:.1f}s", flush=True)
    return row


def to_markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Quality benchmark: MovieLens small, temporal leave-last-out, full ranking",
        "",
        f"{meta['n_users']} users, {meta['n_items']} items ({meta['n_items_with_events']} with ratings), "
        f"{meta['n_events']} events; {meta['n_test']} test targets, of which {meta['n_cold_targets']} "
        f"cold (item with < 5 training events). Machine: {meta['machine']}, torch threads "
        f"{meta['torch_threads']}. Text embedding of {meta['n_items']} items: "
        f"{meta['embed_seconds']} s ({meta['n_embedded']} computed, rest cached).",
        "",
        "| model | HR@10 | NDCG@10 | MRR | coverage@10 | cold HR@10 | train s | score s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} | {r['mrr']:.4f} | "
            f"{r['coverage@10']:.4f} | {r['cold_hr@10']:.4f} | {r['train_seconds']} | {r['score_seconds']} |"
        )
    lines += ["", "Train seconds include early-stopping validation; score seconds = scoring and",
              "ranking every test user against the full catalogue.", ""]
    return "\n".join(lines)


ROWS = {
    "popularity": ("popularity", {}),
    "itemknn": ("itemknn", {}),
    "ease": ("ease", {}),
    "sequential+text": ("sequential", {"use_text": True}),
    "sequential (no text)": ("sequential", {"use_text": False}),
    "ALS (implicit, reference)": ("als", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "movielens-small"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "tailored-bench-cache"))
    parser.add_argument("--only", nargs="*", help="subset of rows", choices=list(ROWS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seq-params", default="{}", help="JSON overrides for both sequential rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = Path(args.data)
    if not (data / "ratings.csv").exists():
        sys.exit(f"MovieLens not found at {data}")

    events, keys, texts = load_movielens(data)
    ds, report = build_dataset(events, item_keys=keys)
    split = leave_last_out_split(ds)
    t0 = time.perf_counter()
    emb, n_embedded = embed_with_cache(TextEncoder(), texts, EmbeddingCache(args.cache))
    embed_s = time.perf_counter() - t0
    print(f"embedded {n_embedded} texts in {embed_s:.1f}s; cleaning {report.as_dict()}", flush=True)

    seq_over = json.loads(args.seq_params)
    rows = []
    for name, (algorithm, params) in ROWS.items():
        if args.only and name not in args.only:
            continue
        params = {**params, **(seq_over if algorithm == "sequential" else {})}
        rows.append(run_row(name, algorithm, params, split, emb))

    counts = split.train_valid.item_counts()
    meta = {"n_users": ds.n_users, "n_items": ds.n_items, "n_events": ds.n_events,
            "n_items_with_events": int((ds.item_counts() > 0).sum()), "n_test": int(len(split.test)),
            "n_cold_targets": int((counts[split.test[:, 1]] < 5).sum()),
            "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads CPU",
            "torch_threads": torch.get_num_threads(), "embed_seconds": round(embed_s, 1),
            "n_embedded": n_embedded, "cleaning": report.as_dict(), "k": K}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if not args.only else "_partial"
    (out / f"quality{suffix}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=str))
    (out / f"quality{suffix}.md").write_text(to_markdown(rows, meta))
    print(to_markdown(rows, meta))


if __name__ == "__main__":
    main()

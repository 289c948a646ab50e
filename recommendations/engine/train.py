"""Train, evaluate and select recommenders; the one entry point Django calls.

Django-facing API
-----------------
::

    model, metrics = fit_recommender(
        algorithm="auto",            # or "popularity" | "itemknn" | "ease" | "sequential"
        dataset=ds,                  # data.build_dataset(...)[0], ALL cleaned events
        item_embeddings=emb,         # float32 [ds.n_items, dim] or None (text.embed_with_cache)
        params={},                   # algorithm params (config dataclass fields); for "auto"
                                     #   {"candidates": {alg: params, ...}} optionally
        device="auto",               # "auto" | "cpu" | "cuda" | "cuda:N"
        progress=callback,           # called with dicts: {"stage", "algorithm", "epoch", ...}
    )
    model.save(directory)            # later: models.load_recommender(directory)
    model.score(user_idx)            # raw scores [n, n_items]; model.probability(scores)
    model.recommend(user_idx, k=10)  # (items, scores), seen items excluded

What it does:

1. ``leave_last_out_split(dataset)``: per customer, last event = test, second-to-last
   = validation (customers with < 3 events only train).
2. ``algorithm="auto"``: :func:`select_best` fits every candidate on ``split.train``
   and keeps the best validation NDCG@10 (full ranking). The selection is on
   validation only, so the test numbers below stay unbiased.
3. The chosen algorithm is fit on ``split.train`` (early stopping on validation for
   the sequential model), Platt-calibrated on the validation targets, and evaluated
   on the test targets with the train+valid histories (fold-in: parameters are not
   refit, the customer's latest events are). ``metrics`` holds ``valid_*`` and
   ``test_*`` keys, plus ``selection`` for "auto" and ``timings``.
4. The returned model is then refit on ALL events (``refit=True``, the default for
   closed-form models where refitting is cheap; the sequential model refits for the
   best epoch count found in step 3) and keeps the calibration of step 3. With
   ``refit=False`` the step-3 model is returned with its histories switched to the
   full dataset, so every customer is scored from their latest events either way.

Every return value is a plain dict / dataclass / numpy array.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .data import Dataset, Split, leave_last_out_split
from .metrics import evaluate
from .models import ALGORITHMS, Recommender, calibrate, make_recommender

Progress = Callable[[dict], None]

DEFAULT_CANDIDATES: dict[str, dict[str, Any]] = {
    "popularity": {},
    "itemknn": {},
    "ease": {},
    "sequential": {},
}


@dataclass
class Candidate:
    algorithm: str
    params: dict[str, Any]
    valid_metrics: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    error: str | None = None


def _with_device(algorithm: str, params: dict[str, Any], device: str | None) -> dict[str, Any]:
    params = dict(params or {})
    if algorithm == "sequential" and device is not None:
        params.setdefault("device", device)
    return params


def _tagged(progress: Progress | None, **tags: Any) -> Progress | None:
    if progress is None:
        return None
    return lambda info: progress({**tags, **info})


def train_and_evaluate(
    algorithm: str,
    params: dict[str, Any] | None,
    split: Split,
    item_embeddings: np.ndarray | None = None,
    progress: Progress | None = None,
    *,
    device: str | None = None,
    k: int = 10,
    evaluate_test: bool = True,
    calibrate_model: bool = True,
) -> tuple[Recommender, dict[str, Any], dict[str, float]]:
    """Fit on ``split.train`` (validating on ``split.valid``), evaluate valid and test.

    Test is scored after :meth:`Recommender.set_histories` with ``split.train_valid``,
    so each test prediction sees every event before the test event. The returned
    model holds those train+valid histories. Returns (model, metrics, timings).
    """
    params = _with_device(algorithm, params or {}, device)
    model = make_recommender(algorithm, params)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    model.fit(split.train, item_embeddings=item_embeddings, valid=split.valid,
              progress=_tagged(progress, stage="fit", algorithm=algorithm))
    timings["train_seconds"] = time.perf_counter() - t0
    metrics: dict[str, Any] = {}
    t0 = time.perf_counter()
    if len(split.valid):
        metrics.update({f"valid_{key}": v for key, v in
                        evaluate(model, split.train, split.valid, k=k).items()})
        if calibrate_model:
            calibrate(model, split.valid, seed=getattr(model.config, "seed", 0))
    if evaluate_test and len(split.test):
        model.set_histories(split.train_valid)
        metrics.update({f"test_{key}": v for key, v in
                        evaluate(model, split.train_valid, split.test, k=k).items()})
    timings["score_seconds"] = time.perf_counter() - t0
    metrics["calibration"] = list(model.calibration)
    return model, metrics, timings


def select_best(
    candidates: dict[str, dict[str, Any]] | list[tuple[str, dict[str, Any]]],
    split: Split,
    item_embeddings: np.ndarray | None = None,
    progress: Progress | None = None,
    *,
    device: str | None = None,
    k: int = 10,
) -> tuple[Candidate, list[Candidate]]:
    """Fit each candidate on ``split.train`` and rank by validation NDCG@k.

    A candidate that raises (e.g. out of memory) is recorded with ``error`` and
    skipped rather than failing the whole run. Returns (best, all candidates).
    """
    items = list(candidates.items()) if isinstance(candidates, dict) else list(candidates)
    results: list[Candidate] = []
    for algorithm, params in items:
        cand = Candidate(algorithm, dict(params or {}))
        t0 = time.perf_counter()
        try:
            model = make_recommender(algorithm, _with_device(algorithm, cand.params, device))
            model.fit(split.train, item_embeddings=item_embeddings, valid=split.valid,
                      progress=_tagged(progress, stage="select", algorithm=algorithm))
            cand.valid_metrics = evaluate(model, split.train, split.valid, k=k)
        except (MemoryError, RuntimeError, ValueError) as exc:
            cand.error = f"{type(exc).__name__}: {exc}"
        cand.train_seconds = time.perf_counter() - t0
        results.append(cand)
        if progress:
            progress({"stage": "select", "algorithm": algorithm, "done": True,
                      "valid_ndcg": cand.valid_metrics.get(f"ndcg@{k}"), "error": cand.error})
    ok = [c for c in results if c.error is None]
    if not ok:
        raise RuntimeError("Every candidate failed: " + "; ".join(str(c.error) for c in results))
    best = max(ok, key=lambda c: c.valid_metrics[f"ndcg@{k}"])
    return best, results


def fit_recommender(
    algorithm: str,
    dataset: Dataset,
    item_embeddings: np.ndarray | None = None,
    params: dict[str, Any] | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    *,
    refit: bool | None = None,
    k: int = 10,
) -> tuple[Recommender, dict[str, Any]]:
    """Choose (for "auto"), train, calibrate and evaluate a recommender on ``dataset``.

    See the module docstring for the protocol. ``metrics`` is JSON-serialisable.
    """
    params = dict(params or {})
    split = leave_last_out_split(dataset)
    metrics: dict[str, Any] = {"n_users": dataset.n_users, "n_items": dataset.n_items,
                               "n_events": dataset.n_events, "protocol": "leave_last_out",
                               "n_valid": int(len(split.valid)), "n_test": int(len(split.test))}
    if algorithm == "auto":
        candidates = params.pop("candidates", None) or {
            alg: ({} if alg != "sequential" or item_embeddings is not None else {"use_text": False})
            for alg in DEFAULT_CANDIDATES
        }
        if len(split.valid) == 0:  # nothing to select on: the safe baseline
            best = Candidate("popularity", {})
            metrics["selection"] = []
        else:
            best, results = select_best(candidates, split, item_embeddings, progress, device=device, k=k)
            metrics["selection"] = [
                {"algorithm": c.algorithm, "params": c.params, "valid_ndcg": c.valid_metrics.get(f"ndcg@{k}"),
                 "train_seconds": round(c.train_seconds, 2), "error": c.error} for c in results
            ]
        algorithm, params = best.algorithm, best.params
    elif algorithm not in ALGORITHMS:
        raise ValueError(f"Unknown algorithm {algorithm!r}; choose 'auto' or one of {sorted(ALGORITHMS)}.")
    metrics["algorithm"] = algorithm
    metrics["params"] = params
    model, eval_metrics, timings = train_and_evaluate(
        algorithm, params, split, item_embeddings, progress, device=device, k=k
    )
    metrics.update(eval_metrics)
    if refit is None:
        refit = algorithm != "sequential"
    t0 = time.perf_counter()
    if refit:
        final_params = _with_device(algorithm, params, device)
        if algorithm == "sequential":
            final_params["fixed_epochs"] = max(1, int(model.fit_info.get("best_epoch") or 1))
            metrics["refit_epochs"] = final_params["fixed_epochs"]
        final = make_recommender(algorithm, final_params)
        final.fit(dataset, item_embeddings=item_embeddings,
                  progress=_tagged(progress, stage="refit", algorithm=algorithm))
        final.calibration = model.calibration
        model = final
    else:
        model.set_histories(dataset)
    timings["refit_seconds"] = time.perf_counter() - t0
    metrics["refit"] = bool(refit)
    metrics["timings"] = {key: round(v, 3) for key, v in timings.items()}
    return model, metrics

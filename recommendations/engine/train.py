"""Train, evaluate and select recommenders; the one entry point Django calls.

Django-facing API
-----------------
::

    model, metrics = fit_recommender(
        algorithm="auto",            # or "popularity" | "trending" | "itemknn" | "ease" | "ease_trending"
                                     #   | "sequential"
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

1. ``leave_last_out_split(dataset)``: per customer, the last BASKET = test, the one before
   = validation (customers with < 3 baskets only train); no target ever has its
   basket-mates in its input. The discover targets are the held-out basket's items new
   to the customer; the buy-again targets are its repeat items.
2. ``algorithm="auto"``: :func:`select_best` fits every candidate on ``split.train`` and
   measures validation NDCG@10 on the discover targets (full ranking, bought items excluded,
   exactly as served; popularity and trending as of each validation basket's time, from the
   events before it, see ``Recommender.set_now``). The reference is the better of popularity and EASE; another candidate
   replaces it only when it beats it by more than ``min_z`` paired standard errors
   (:func:`selection_rule`). The selection is on validation only, so the test numbers below
   stay unbiased. :func:`fit_buy_again` does the same for the buy-again list (the ranker
   against "most frequent" and "most recent").
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

from .cold_slots import ColdSlots, choose_cold_slots
from .data import Dataset, Split, leave_last_out_split
from .metrics import (
    date_mix_weights,
    effective_groups,
    evaluate,
    evaluate_ranks,
    ndcg_gains,
    standard_error,
    weighted_mean_se,
)
from .models import ALGORITHMS, BuyAgain, Recommender, calibrate, make_recommender
from .tasks import LIST_BUY_AGAIN, LIST_DISCOVER

Progress = Callable[[dict], None]

# The references every other candidate must beat beyond noise (per task).
REFERENCES = {LIST_DISCOVER: ("popularity", "ease"), LIST_BUY_AGAIN: ("frequency", "recency")}
MIN_Z = 2.0  # a challenger must beat the best reference by more than MIN_Z paired standard errors

DEFAULT_CANDIDATES: dict[str, dict[str, Any]] = {
    "popularity": {},
    "trending": {},
    "itemknn": {},
    "ease": {},
    "ease_trending": {},
    "sequential": {},
}
# Settings a candidate chooses on validation (fit_info) that its refit on every event keeps:
# trending's half-life, ease_trending's half-life and trend weight.
CHOSEN_ON_VALIDATION = ("half_life_days", "trend_weight")


@dataclass
class Candidate:
    algorithm: str
    params: dict[str, Any]
    valid_metrics: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    error: str | None = None
    gains: np.ndarray | None = field(default=None, repr=False)  # per-target NDCG gains on valid
    model: Recommender | None = field(default=None, repr=False)
    verdict: str = ""


def _with_device(algorithm: str, params: dict[str, Any], device: str | None) -> dict[str, Any]:
    params = dict(params or {})
    if algorithm == "sequential" and device is not None:
        params.setdefault("device", device)
    return params


def _tagged(progress: Progress | None, **tags: Any) -> Progress | None:
    if progress is None:
        return None
    return lambda info: progress({**tags, **info})


def served_list_estimate(gains: np.ndarray, split: Split, k: int = 10) -> dict[str, float]:
    """The served list's expected NDCG@k: the validation gains (one per ``split.valid`` target)
    weighted to the date mix of the customers' latest orders.

    Why: a list is judged on the orders that come after it, which are each customer's NEXT order,
    while validation orders lie one order further back, so their dates are older. Quality moves with
    the date on real shops (on Ta Feng a 7-day trending list scores 0.011-0.020 NDCG@10 on January
    orders and 0.037-0.045 on late-February ones), so the plain validation mean is the level of the
    wrong weeks: 0.0234 for a served 0.0264 ± 0.0004 there. Weighted to the dates of the customers'
    last imported orders (one per customer, the internal test's orders, the best stand-in there is
    for the next ones), it is 0.0254 ± 0.0009 through the command line. Selection keeps the plain
    validation: the weights cost effective customers (about half on Ta Feng), which a paired
    comparison cannot spare. Returns ``{}`` without validation or test orders.
    """
    targets = np.asarray(split.valid, np.int64).reshape(-1, 2)
    tested = np.unique(np.asarray(split.test, np.int64).reshape(-1, 2)[:, 0])
    if not len(targets) or not len(tested) or split.valid_now is None or split.test_now is None:
        return {}
    users = targets[:, 0]
    weights = date_mix_weights(split.valid_now[users], split.test_now[tested])
    mean, se = weighted_mean_se(np.asarray(gains, np.float64), weights, users)
    if not (np.isfinite(mean) and np.isfinite(se)):  # nothing weighed: no estimate (JSON has no NaN)
        return {}
    return {f"expected_ndcg@{k}": mean, f"expected_ndcg@{k}_se": se,
            "expected_customers": int(round(effective_groups(weights, users)))}


def served_list_expected(model: Recommender, split: Split, k: int = 10) -> dict[str, float]:
    """:func:`served_list_estimate` of the list ``model`` serves now, its cold stage included
    (histories: ``split.train``). Why: the cold slots are chosen after the model, and they change
    the list; the number must be that of the list a customer gets, not of the model alone."""
    if not len(split.valid):
        return {}
    _, ranks = evaluate_ranks(model, split.train, split.valid, k=k, now=split.valid_now)
    return served_list_estimate(ndcg_gains(ranks, k), split, k)


def selection_rule(
    results: list[Candidate], users: np.ndarray, *, references: tuple[str, ...], k: int = 10, min_z: float = MIN_Z
) -> Candidate:
    """The honest choice. The reference is the best-scoring of ``references`` (the baselines);
    another candidate is chosen only if its validation NDCG@k beats the reference's by more than
    ``min_z`` standard errors of the PAIRED per-target difference (clustered by customer). Among
    candidates that clear the bar, the highest NDCG wins. Sets each candidate's ``verdict``."""
    key = f"ndcg@{k}"
    ok = [c for c in results if c.error is None]
    if not ok:
        raise RuntimeError("Every candidate failed: " + "; ".join(str(c.error) for c in results))
    refs = [c for c in ok if c.algorithm in references] or ok
    reference = max(refs, key=lambda c: c.valid_metrics[key])
    best = reference
    for c in ok:
        if c is reference:
            c.verdict = "reference (best baseline)"
            continue
        if c.algorithm in references or c.gains is None or reference.gains is None:
            c.verdict = "baseline" if c.algorithm in references else "not comparable"
            continue
        diff = c.gains - reference.gains
        se = standard_error(diff, users)
        z = float(diff.mean() / se) if se > 0 else (np.inf if diff.mean() > 0 else 0.0)
        c.valid_metrics[f"{key}_diff_vs_reference"] = float(diff.mean())
        c.valid_metrics[f"{key}_diff_se"] = se
        if z > min_z:
            c.verdict = f"beats {reference.algorithm} by {z:.1f} SE"
            if c.valid_metrics[key] > best.valid_metrics[key]:
                best = c
        else:
            c.verdict = f"not better than {reference.algorithm} beyond noise ({z:.1f} SE <= {min_z})"
    return best


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
    model: Recommender | None = None,
    cold_slots: bool = True,
) -> tuple[Recommender, dict[str, Any], dict[str, float]]:
    """Fit on ``split.train`` (validating on ``split.valid``), evaluate valid and test.

    Test is scored after :meth:`Recommender.set_histories` with ``split.train_valid``,
    so each test prediction sees every event before the test basket. The returned
    model holds those train+valid histories. Returns (model, metrics, timings).
    ``model``: an already fitted model (from the selection) to evaluate instead of refitting.
    ``cold_slots`` (with ``item_embeddings``): choose the cold stage on validation
    (:func:`~.cold_slots.choose_cold_slots`) and attach it when it gives cold items any slot; the
    test metrics are then those of the served list, and ``metrics["cold_slots"]`` says why.
    """
    params = _with_device(algorithm, params or {}, device)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if model is None:
        model = make_recommender(algorithm, params)
        model.fit(split.train, item_embeddings=item_embeddings, valid=split.valid, valid_now=split.valid_now,
                  progress=_tagged(progress, stage="fit", algorithm=algorithm))
    timings["train_seconds"] = time.perf_counter() - t0
    metrics: dict[str, Any] = {}
    t0 = time.perf_counter()
    if len(split.valid):
        valid, ranks = evaluate_ranks(model, split.train, split.valid, k=k, now=split.valid_now)
        metrics.update({f"valid_{key}": v for key, v in valid.items()})
        metrics.update(served_list_estimate(ndcg_gains(ranks, k), split, k))
        if calibrate_model:
            calibrate(model, split.valid, seed=getattr(model.config, "seed", 0), now=split.valid_now)
        if cold_slots and item_embeddings is not None:
            t1 = time.perf_counter()
            metrics["cold_slots"] = cold_stage_attach(model, split, item_embeddings)
            timings["cold_slots_seconds"] = time.perf_counter() - t1
            if model.cold_stage is not None:  # the served list has cold slots: its own expected number
                metrics.update(served_list_expected(model, split, k))
    if evaluate_test and len(split.test):
        model.set_histories(split.train_valid)
        metrics.update({f"test_{key}": v for key, v in
                        evaluate(model, split.train_valid, split.test, k=k, now=split.test_now).items()})
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
    min_z: float = MIN_Z,
    keep_model: bool = False,
    fit: Callable[[str, dict[str, Any]], Recommender] | None = None,
) -> tuple[Candidate, list[Candidate]]:
    """Fit each candidate on ``split.train``, measure discover NDCG@k on ``split.valid`` and
    choose with :func:`selection_rule` (never a model that is not better than popularity and
    EASE beyond noise).

    A candidate that raises (e.g. out of memory) is recorded with ``error`` and skipped
    rather than failing the whole run. ``keep_model`` keeps the chosen candidate's fitted
    model on ``best.model`` (the others are dropped as soon as they lose, to bound memory).
    ``fit(algorithm, params)`` overrides how a candidate is fit (the host adds its logging).
    Returns (best, all candidates).
    """
    items = list(candidates.items()) if isinstance(candidates, dict) else list(candidates)
    results: list[Candidate] = []
    targets = np.asarray(split.valid, dtype=np.int64).reshape(-1, 2)
    for algorithm, params in items:
        cand = Candidate(algorithm, dict(params or {}))
        t0 = time.perf_counter()
        try:
            if fit is not None:
                model = fit(algorithm, cand.params)
            else:
                model = make_recommender(algorithm, _with_device(algorithm, cand.params, device))
                model.fit(split.train, item_embeddings=item_embeddings, valid=split.valid,
                          valid_now=split.valid_now, progress=_tagged(progress, stage="select", algorithm=algorithm))
            cand.train_seconds = time.perf_counter() - t0
            cand.valid_metrics, ranks = evaluate_ranks(model, split.train, targets, k=k, now=split.valid_now)
            cand.gains = ndcg_gains(ranks, k)
            if keep_model:
                cand.model = model
        except (MemoryError, RuntimeError, ValueError) as exc:
            cand.error = f"{type(exc).__name__}: {exc}"
            cand.train_seconds = time.perf_counter() - t0
        results.append(cand)
        if progress:
            progress({"stage": "select", "algorithm": algorithm, "done": True,
                      "valid_ndcg": cand.valid_metrics.get(f"ndcg@{k}"), "error": cand.error})
    best = selection_rule(results, targets[:, 0], references=REFERENCES[LIST_DISCOVER], k=k, min_z=min_z)
    for c in results:
        if c is not best:
            c.model = None
    return best, results


def selection_report(results: list[Candidate], k: int = 10) -> list[dict[str, Any]]:
    """JSON rows for ``metrics["selection"]``."""
    key = f"ndcg@{k}"
    return [
        {"algorithm": c.algorithm, "params": c.params, "valid_ndcg": c.valid_metrics.get(key),
         "valid_ndcg_se": c.valid_metrics.get(f"{key}_se"), "verdict": c.verdict,
         "train_seconds": round(c.train_seconds, 2), "error": c.error}
        for c in results
    ]


def _ba_eval(model: BuyAgain, train: Dataset, targets: np.ndarray, now: np.ndarray | None,
             k: int) -> tuple[dict, np.ndarray]:
    model.set_histories(train)
    model.set_now(now)
    return evaluate_ranks(model, train, targets, k=k, task=LIST_BUY_AGAIN, with_coverage=False)


def fit_buy_again(
    dataset: Dataset, split: Split, *, k: int = 10, min_z: float = MIN_Z, params: dict[str, Any] | None = None
) -> tuple[BuyAgain, dict[str, Any]]:
    """The buy-again list: fit the ranker and the two baselines ("most frequent", "most recent")
    on ``split.train``, choose on the validation REPEAT targets with :func:`selection_rule`,
    measure all three on the test repeat targets, and return the chosen one refit on ALL of
    ``dataset`` (it scores from the full histories) with the task's metrics."""
    modes = {"learned": "buy_again", "frequency": "frequency", "recency": "recency"}
    results: list[Candidate] = []
    models: dict[str, BuyAgain] = {}
    for mode, name in modes.items():
        cand = Candidate(name, {"mode": mode, **(params or {})})
        t0 = time.perf_counter()
        model = BuyAgain(**cand.params).fit(split.train)
        cand.train_seconds = time.perf_counter() - t0
        if len(split.valid_repeat):
            cand.valid_metrics, ranks = _ba_eval(model, split.train, split.valid_repeat, split.valid_now, k)
            cand.gains = ndcg_gains(ranks, k)
        else:
            cand.valid_metrics = {f"ndcg@{k}": 0.0}
        models[name] = model
        results.append(cand)
    users = np.asarray(split.valid_repeat, np.int64).reshape(-1, 2)[:, 0]
    best = selection_rule(results, users, references=REFERENCES[LIST_BUY_AGAIN], k=k, min_z=min_z)
    baselines = {}
    test: dict[str, Any] = {"n_targets": int(len(split.test_repeat))}
    for c in results:
        if len(split.test_repeat):
            m, _ = _ba_eval(models[c.algorithm], split.train_valid, split.test_repeat, split.test_now, k)
        else:
            m = {"n_targets": 0}
        m["valid_ndcg@10"] = c.valid_metrics.get(f"ndcg@{k}")
        m["verdict"] = c.verdict
        if c is best:
            test.update(m)
        baselines[c.algorithm] = m
    final = BuyAgain(**best.params).fit(dataset)
    task = {**test, "algorithm": best.algorithm, "baselines": baselines,
            "selection": selection_report(results, k), "protocol": "leave-last-basket-out, repeat targets"}
    return final, task


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
    min_z: float = MIN_Z,
) -> tuple[Recommender, dict[str, Any]]:
    """Choose (for "auto"), train, calibrate and evaluate a discover recommender on ``dataset``.

    See the module docstring for the protocol. ``metrics`` is JSON-serialisable; its flat
    ``valid_*``/``test_*`` keys are the discover task, ``metrics["tasks"]["discover"]`` repeats
    them with standard errors and the baselines' test numbers. The buy-again list is fit by
    :func:`fit_buy_again`.
    """
    params = dict(params or {})
    split = leave_last_out_split(dataset)
    metrics: dict[str, Any] = {"n_users": dataset.n_users, "n_items": dataset.n_items,
                               "n_events": dataset.n_events, "protocol": "leave_last_basket_out",
                               "n_valid": int(len(split.valid)), "n_test": int(len(split.test))}
    chosen_model = None
    results: list[Candidate] = []
    if algorithm == "auto":
        candidates = params.pop("candidates", None) or {
            alg: ({} if alg != "sequential" or item_embeddings is not None else {"use_text": False})
            for alg in DEFAULT_CANDIDATES
        }
        if len(split.valid) == 0:  # nothing to select on: the safe baseline
            best = Candidate("popularity", {})
            metrics["selection"] = []
        else:
            best, results = select_best(candidates, split, item_embeddings, progress, device=device, k=k,
                                        min_z=min_z, keep_model=True)
            metrics["selection"] = selection_report(results, k)
            chosen_model = best.model
        algorithm, params = best.algorithm, best.params
    elif algorithm not in ALGORITHMS:
        raise ValueError(f"Unknown algorithm {algorithm!r}; choose 'auto' or one of {sorted(ALGORITHMS)}.")
    metrics["algorithm"] = algorithm
    metrics["params"] = params
    model, eval_metrics, timings = train_and_evaluate(
        algorithm, params, split, item_embeddings, progress, device=device, k=k, model=chosen_model
    )
    metrics.update(eval_metrics)
    metrics["tasks"] = {LIST_DISCOVER: discover_task_metrics(eval_metrics, results, split, k)}
    if refit is None:
        refit = algorithm != "sequential"
    t0 = time.perf_counter()
    if refit:
        final_params = _with_device(algorithm, params, device)
        if algorithm == "sequential":
            final_params["fixed_epochs"] = max(1, int(model.fit_info.get("best_epoch") or 1))
            metrics["refit_epochs"] = final_params["fixed_epochs"]
        chosen = {key: model.fit_info[key] for key in CHOSEN_ON_VALIDATION if model.fit_info.get(key) is not None}
        if chosen:  # chosen on validation: keep it
            final_params.update(chosen)
            metrics["params"] = {**params, **chosen}
        final = make_recommender(algorithm, final_params)
        final.fit(dataset, item_embeddings=item_embeddings,
                  progress=_tagged(progress, stage="refit", algorithm=algorithm))
        final.calibration = model.calibration
        cold_stage_carry(model.cold_stage, final, dataset, item_embeddings)
        model = final
    else:
        model.set_histories(dataset)
    timings["refit_seconds"] = time.perf_counter() - t0
    metrics["refit"] = bool(refit)
    metrics["timings"] = {key: round(v, 3) for key, v in timings.items()}
    return model, metrics


def cold_stage_attach(model: Recommender, split: Split, item_embeddings: np.ndarray | None) -> dict | None:
    """Choose ``model``'s cold stage on validation (:func:`~.cold_slots.choose_cold_slots`, model
    fit on ``split.train``) and attach it when it gives cold items any slot; returns the JSON
    report (None without text embeddings: there is no text profile)."""
    if item_embeddings is None or not len(split.valid):
        model.set_cold_stage(None)
        return None
    model.set_now(split.valid_now)  # popularity-like models: as of each validation basket
    try:
        stage, report = choose_cold_slots(model, split.train, split.valid, item_embeddings)
    finally:
        model.set_now(None)
    model.set_cold_stage(stage if stage.config.slots else None, split.train)
    return report


def cold_stage_carry(stage: ColdSlots | None, dst: Recommender, dataset: Dataset,
                     item_embeddings: np.ndarray | None) -> None:
    """Give a refit ``dst`` the cold ``stage`` chosen for the model fit on the split (same
    configuration; counts and histories of ``dataset``)."""
    if stage is not None and item_embeddings is not None:
        dst.set_cold_stage(ColdSlots(stage.config, item_embeddings, dataset.item_counts()), dataset)


def discover_task_metrics(eval_metrics: dict[str, Any], results: list[Candidate], split: Split,
                          k: int = 10) -> dict[str, Any]:
    """``metrics["tasks"]["discover"]``: the chosen model's test metrics (with standard errors), its
    validation NDCG and the served list's expected NDCG (:func:`served_list_estimate`) when
    ``eval_metrics`` holds them, plus each candidate's validation numbers and verdict as ``baselines``."""
    test = {key[5:]: v for key, v in eval_metrics.items() if key.startswith("test_")}
    test.setdefault("n_targets", int(len(split.test)))
    test.update({key: v for key, v in eval_metrics.items() if key.startswith("expected_")})
    test.update({key: eval_metrics[key] for key in (f"valid_ndcg@{k}", f"valid_ndcg@{k}_se") if key in eval_metrics})
    test["baselines"] = {
        c.algorithm: {"valid_ndcg@10": c.valid_metrics.get(f"ndcg@{k}"),
                      "valid_ndcg@10_se": c.valid_metrics.get(f"ndcg@{k}_se"), "verdict": c.verdict,
                      "error": c.error}
        for c in results
    }
    test["protocol"] = "leave-last-basket-out, new-item targets, bought items excluded"
    return test

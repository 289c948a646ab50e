"""Platt scaling: raw model scores -> calibrated probabilities.

Why: campaigns use thresholds ("e-mail customers with P(buy) > 0.2"), which only
make sense if scores are probabilities. Every model's raw score is mapped through
``sigmoid(a * score + b)``; (a, b) are fit on held-out validation targets (positives) and
uniformly sampled catalogue items the customer has not bought (negatives: the discover list never
holds bought items). Negatives are re-weighted to stand for the whole catalogue, so the result
estimates "P(this is the customer's next item)", not the positive rate of the sample.

A model that does not cover every item (EASE capped at ``max_items``) gives the rest placeholder
scores far below its real ones (``Recommender.score_floor``); those samples are left out of the fit,
or a few of them (-1e6 among scores of order 1) would flatten the slope to 0 and every probability
to the same number. Uncovered items keep their placeholder score, so their probability is ~0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .base import Recommender


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


def fit_platt(
    scores: np.ndarray,
    labels: np.ndarray,
    sample_weight: np.ndarray | None = None,
    l2: float = 1e-6,
    max_iter: int = 100,
) -> tuple[float, float]:
    """Fit ``P(y=1|s) = sigmoid(a*s + b)`` by weighted logistic regression (Newton).

    Uses Platt's smoothed targets to avoid infinite slopes on separable data, and halves a Newton
    step until it lowers the loss: on (nearly) separable samples (an item-to-item model scores most
    unrelated items exactly 0) the full step overshoots and the slope ran away to ~1e10.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    w = np.ones_like(s) if sample_weight is None else np.asarray(sample_weight, np.float64).ravel()
    finite = np.isfinite(s)
    s, y, w = s[finite], y[finite], w[finite]
    if len(s) == 0 or y.min() == y.max():
        return 1.0, 0.0
    n_pos, n_neg = w[y == 1].sum(), w[y == 0].sum()
    t = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    mu, sd = s.mean(), s.std() or 1.0
    z = (s - mu) / sd  # standardise for a well-conditioned Newton step

    def loss(a: float, b: float) -> float:
        x = a * z + b  # weighted cross-entropy against the smoothed targets, stable in x
        return float(np.sum(w * (t * np.logaddexp(0.0, -x) + (1 - t) * np.logaddexp(0.0, x))) + 0.5 * l2 * a * a)

    a, b = 1.0, 0.0
    current = loss(a, b)
    for _ in range(max_iter):
        p = sigmoid(a * z + b)
        g = np.array([np.sum(w * (p - t) * z) + l2 * a, np.sum(w * (p - t))])
        r = w * p * (1 - p)
        h = np.array([[np.sum(r * z * z) + l2, np.sum(r * z)], [np.sum(r * z), np.sum(r) + 1e-12]])
        step = np.linalg.solve(h, g)
        for _ in range(30):  # backtracking: never accept a step that makes the fit worse
            trial = loss(a - step[0], b - step[1])
            if trial <= current:
                break
            step = step / 2
        else:
            break  # no step lowers the loss: at the optimum (to rounding)
        a, b, current = a - step[0], b - step[1], trial
        if np.abs(step).max() < 1e-8:
            break
    # back to the raw-score scale
    return float(a / sd), float(b - a * mu / sd)


def apply_platt(scores: np.ndarray, a: float, b: float) -> np.ndarray:
    return sigmoid(a * np.asarray(scores, dtype=np.float64) + b).astype(np.float32)


def calibrate(
    model: Recommender,
    targets: np.ndarray,
    n_negatives: int = 50,
    seed: int = 0,
    batch_size: int = 512,
    now: np.ndarray | None = None,
) -> tuple[float, float]:
    """Fit Platt parameters for ``model`` on validation ``targets`` [(user, item)] and
    store them on the model (``model.calibration``). Returns (a, b). ``now``: per user index, the
    time of the validation basket (models that depend on the moment score as of it)."""
    targets = np.asarray(targets, dtype=np.int64).reshape(-1, 2)
    if len(targets) == 0:
        return model.calibration
    if now is not None:
        model.set_now(now)
        try:
            return calibrate(model, targets, n_negatives, seed, batch_size)
        finally:
            model.set_now(None)
    rng = np.random.default_rng(seed)
    n_items = model.n_items
    pos, neg = [], []
    for start in range(0, len(targets), batch_size):
        chunk = targets[start : start + batch_size]
        # each customer scored once (a basket holds several targets of the same customer)
        users, rows = np.unique(chunk[:, 0], return_inverse=True)
        sc = model.score(users)
        rows = rows.reshape(-1)
        pos.append(sc[rows, chunk[:, 1]])
        cols = rng.integers(0, n_items, size=(len(chunk), n_negatives))
        # the customer's own items are never in the list being calibrated (bought items are excluded
        # from it) and score high for item-to-item models: they are not negatives
        sc[model.seen_mask_rows(users).nonzero()] = np.nan
        sampled = sc[rows[:, None], cols].ravel()
        neg.append(sampled[~np.isnan(sampled)])
    p, n = np.concatenate(pos), np.concatenate(neg)
    floor = model.score_floor
    if floor is not None:  # the uncovered items' placeholders: not evidence about the score scale
        p, n = p[p > floor], n[n > floor]
    scores = np.concatenate([p, n])
    labels = np.r_[np.ones(len(p)), np.zeros(len(n))]
    weight = np.r_[np.ones(len(p)), np.full(len(n), max(n_items - 1, 1) / n_negatives)]
    a, b = fit_platt(scores, labels, weight)
    model.calibration = (a, b)
    return a, b

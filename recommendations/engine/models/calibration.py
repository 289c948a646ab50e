"""Platt scaling: raw model scores -> calibrated probabilities.

Why: campaigns use thresholds ("e-mail customers with P(buy) > 0.2"), which only
make sense if scores are probabilities. Every model's raw score is mapped through
``sigmoid(a * score + b)``; (a, b) are fit on held-out validation targets
(positives) and uniformly sampled catalogue items (negatives). Negatives are
re-weighted to stand for the whole catalogue, so the result estimates
"P(this is the customer's next item)", not the positive rate of the sample.
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

    Uses Platt's smoothed targets to avoid infinite slopes on separable data.
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
    a, b = 1.0, 0.0
    for _ in range(max_iter):
        p = sigmoid(a * z + b)
        g = np.array([np.sum(w * (p - t) * z) + l2 * a, np.sum(w * (p - t))])
        r = w * p * (1 - p)
        h = np.array([[np.sum(r * z * z) + l2, np.sum(r * z)], [np.sum(r * z), np.sum(r) + 1e-12]])
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
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
) -> tuple[float, float]:
    """Fit Platt parameters for ``model`` on validation ``targets`` [(user, item)] and
    store them on the model (``model.calibration``). Returns (a, b)."""
    targets = np.asarray(targets, dtype=np.int64).reshape(-1, 2)
    if len(targets) == 0:
        return model.calibration
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
        neg.append(sc[rows[:, None], cols].ravel())
    p, n = np.concatenate(pos), np.concatenate(neg)
    scores = np.concatenate([p, n])
    labels = np.r_[np.ones(len(p)), np.zeros(len(n))]
    weight = np.r_[np.ones(len(p)), np.full(len(n), max(n_items - 1, 1) / n_negatives)]
    a, b = fit_platt(scores, labels, weight)
    model.calibration = (a, b)
    return a, b

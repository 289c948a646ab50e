"""Full-ranking offline metrics.

Why full ranking: metrics computed against a handful of sampled negatives are
known to mis-order models (Krichene & Rendle 2020), so every target is ranked
against the WHOLE catalogue. Ranks are 0-based; ties count against the target
(pessimistic), so a model that scores everything equal gets no credit.

With ``exclude_seen`` the items in the customer's training history are removed
from the ranking, as in production; a target the customer had already seen then
counts as a miss (rank = n_items) and is reported in ``n_targets_seen``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .data import Dataset

if TYPE_CHECKING:
    from .models.base import Recommender


def hit_rate(ranks: np.ndarray, k: int) -> float:
    """Fraction of targets ranked in the top k (ranks are 0-based)."""
    ranks = np.asarray(ranks)
    return float(np.mean(ranks < k)) if len(ranks) else 0.0


def ndcg_gains(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-target NDCG@k with one relevant item per target: 1/log2(rank + 2) if rank < k, else 0."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def ndcg(ranks: np.ndarray, k: int) -> float:
    """Mean NDCG@k with one relevant item per target (:func:`ndcg_gains`)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(ndcg_gains(ranks, k).mean()) if len(ranks) else 0.0


def mrr(ranks: np.ndarray) -> float:
    """Mean reciprocal rank over the full ranking: mean of 1/(rank + 1)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(1.0 / (ranks + 1.0))) if len(ranks) else 0.0


def standard_error(values: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Standard error of the mean of ``values``; clustered by ``groups`` (the customer) when
    given, because the targets of one basket are not independent of each other."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n < 2:
        return 0.0
    if groups is None:
        return float(values.std(ddof=1) / np.sqrt(n))
    _, g = np.unique(np.asarray(groups), return_inverse=True)
    resid = np.bincount(g.reshape(-1), weights=values - values.mean())
    n_groups = len(resid)
    if n_groups < 2:
        return 0.0
    return float(np.sqrt((resid**2).sum() * n_groups / (n_groups - 1)) / n)


def weighted_mean_se(values: np.ndarray, weights: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """Weighted mean of ``values`` and its standard error clustered by ``groups`` (the ratio
    estimator's linearisation: the residuals ``w * (x - mean)`` summed per customer)."""
    x = np.asarray(values, np.float64)
    w = np.asarray(weights, np.float64)
    total = float(w.sum())
    if total <= 0 or not len(x):
        return float("nan"), float("nan")
    mean = float((w * x).sum() / total)
    _, g = np.unique(np.asarray(groups), return_inverse=True)
    resid = np.bincount(g.reshape(-1), weights=w * (x - mean))
    n = len(resid)
    return mean, float(np.sqrt((resid**2).sum() * n / max(n - 1, 1)) / total)


def effective_groups(weights: np.ndarray, groups: np.ndarray) -> float:
    """Kish's effective number of customers behind target ``weights`` (a customer's weight: the
    mean of their targets'): the full count when all weigh the same, fewer as weights spread."""
    _, g = np.unique(np.asarray(groups), return_inverse=True)
    g = g.reshape(-1)
    per = np.bincount(g, weights=np.asarray(weights, np.float64)) / np.bincount(g)
    square = float((per**2).sum())
    return float(per.sum() ** 2 / square) if square > 0 else 0.0


def date_mix_weights(times: np.ndarray, reference_times: np.ndarray, bins: int = 20) -> np.ndarray:
    """Importance weights that give ``times`` the date mix of ``reference_times``: the density
    ratio over (up to) ``bins`` quantile bins of ``times``; reference times outside their range
    count in the first or last bin."""
    times = np.asarray(times, np.float64)
    ref = np.asarray(reference_times, np.float64)
    ref = ref[np.isfinite(ref)]
    if not len(times) or not len(ref):
        return np.ones(len(times))
    edges = np.unique(np.quantile(times, np.linspace(0.0, 1.0, bins + 1)))
    if len(edges) < 2:  # one date: nothing to reweight
        return np.ones(len(times))

    def bin_of(t: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(edges, t, side="right") - 1, 0, len(edges) - 2)

    here = bin_of(times)
    share = np.bincount(here, minlength=len(edges) - 1) / len(times)
    wanted = np.bincount(bin_of(ref), minlength=len(edges) - 1) / len(ref)
    return (wanted / np.maximum(share, 1e-12))[here]


def target_ranks(scores: np.ndarray, target_items: np.ndarray) -> np.ndarray:
    """0-based pessimistic rank of each row's target among all finite-scored items."""
    rows = np.arange(len(target_items))
    t = scores[rows, target_items][:, None]
    higher = (scores > t).sum(1)
    ties = (scores == t).sum(1) - 1
    ranks = higher + ties
    ranks[~np.isfinite(t[:, 0])] = scores.shape[1]
    return ranks.astype(np.int64)


def evaluate(model: Recommender, split_train: Dataset, targets: np.ndarray, k: int = 10, **options) -> dict:
    """:func:`evaluate_ranks` without the per-target ranks."""
    return evaluate_ranks(model, split_train, targets, k=k, **options)[0]


def evaluate_ranks(
    model: Recommender,
    split_train: Dataset,
    targets: np.ndarray,
    k: int = 10,
    cold_threshold: int = 5,
    exclude_seen: bool = True,
    batch_size: int = 512,
    with_coverage: bool = True,
    task: str = "discover",
    now: np.ndarray | None = None,
) -> tuple[dict, np.ndarray]:
    """HR@k, NDCG@k, MRR, coverage@k and the cold-item slice for ``targets`` [(user, item)],
    each with its standard error (``<metric>_se``, clustered by customer); and the 0-based
    rank of each target (for paired comparisons).

    ``split_train`` is the data the model saw: it defines seen items (masked when
    ``exclude_seen``) and which targets are cold (item with < ``cold_threshold``
    training events). ``task="buy_again"`` ranks only the customer's OWN past items
    (everything else is out of the ranking), the way that list is served. ``now`` (per user index,
    the held-out basket's time: ``Split.valid_now``/``test_now``): models that depend on the moment
    (popularity, trending) score each customer as of it, from the events before it
    (:meth:`Recommender.set_now`), and go back to the end of their histories afterwards.
    """
    if task not in ("discover", "buy_again"):
        raise ValueError(f"task must be 'discover' or 'buy_again', not {task!r}.")
    if now is not None:
        model.set_now(now)
        try:
            return evaluate_ranks(model, split_train, targets, k, cold_threshold, exclude_seen, batch_size,
                                  with_coverage, task)
        finally:
            model.set_now(None)
    targets = np.asarray(targets, dtype=np.int64).reshape(-1, 2)
    n_items = split_train.n_items
    seen = split_train.csr(binary=True) if (exclude_seen or task == "buy_again") else None
    item_counts = split_train.item_counts()
    ranks = np.empty(len(targets), dtype=np.int64)
    target_seen = np.zeros(len(targets), dtype=bool)
    in_top = np.zeros(n_items, dtype=bool)
    for start in range(0, len(targets), batch_size):
        chunk = targets[start : start + batch_size]
        users, inverse = np.unique(chunk[:, 0], return_inverse=True)
        # the served scores (the model's cold stage applied) when the model has them
        scores = getattr(model, "served_score", model.score)(users).astype(np.float32, copy=True)
        if task == "buy_again":
            own = np.asarray(seen[users].todense()) > 0
            scores[~own] = -np.inf
        elif seen is not None:
            coo = seen[users].tocoo()
            scores[coo.row, coo.col] = -np.inf
        if with_coverage:
            kk = min(k, n_items)
            top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
            in_top[top.ravel()] = True
        rows = scores[inverse]
        ranks[start : start + len(chunk)] = target_ranks(rows, chunk[:, 1])
        if seen is not None and task == "discover":
            target_seen[start : start + len(chunk)] = np.asarray(
                seen[chunk[:, 0], chunk[:, 1]]
            ).ravel() > 0
    cold = item_counts[targets[:, 1]] < cold_threshold
    users = targets[:, 0]
    hits = (ranks < k).astype(np.float64)
    gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
    result = {
        "task": task,
        f"hr@{k}": hit_rate(ranks, k),
        f"hr@{k}_se": standard_error(hits, users),
        f"ndcg@{k}": ndcg(ranks, k),
        f"ndcg@{k}_se": standard_error(gains, users),
        "mrr": mrr(ranks),
        "mrr_se": standard_error(1.0 / (ranks + 1.0), users),
        f"cold_hr@{k}": hit_rate(ranks[cold], k),
        f"cold_hr@{k}_se": standard_error(hits[cold], users[cold]),
        f"cold_ndcg@{k}": ndcg(ranks[cold], k),
        "n_targets": int(len(targets)),
        "n_cold_targets": int(cold.sum()),
        "n_targets_seen": int(target_seen.sum()),
        "n_items": int(n_items),
    }
    if with_coverage:
        result[f"coverage@{k}"] = float(in_top.mean()) if n_items else 0.0
    return result, ranks

"""Popularity (the baseline every other model must beat) and trending (popularity that forgets).

Score of an item = sum of its interaction weights, optionally decayed exponentially with age
(``half_life_days``) so that what is popular *now* wins. Same scores for every customer.

``trending`` is popularity with a half-life chosen on the validation targets (from
``HALF_LIFE_GRID_DAYS``) when none is given. Why: in a shop whose assortment and promotions move
(Ta Feng: the exported list's NDCG@10 on the held-out last orders is 0.0253 with a 7-day half-life
against 0.0212 all-time, bench/results/quality_tafeng_truth.md), the last weeks predict the next
order better than the whole history; where tastes are stable the validation keeps a long half-life
or the selection keeps all-time popularity.

Time-consistent evaluation (:meth:`Popularity.set_now`): a popularity list is what everybody bought
BEFORE the moment it is served. Scored "at the end of the data" for a validation basket from weeks
earlier, it would count what other customers bought after that basket (and decay from the wrong
moment: measured on Ta Feng, a 7-day half-life looks like 0.0118 at the end and 0.0225 as of the
basket). So the evaluation scores each customer as of the time of their held-out basket, from the
events before it; serving (no ``now``) uses every event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import Dataset
from .base import FitInputs, Recommender

DAY = 86400.0
# Half-lives ``trending`` chooses from on validation: a week (promotions, seasonal peaks) to a quarter
# (slow drift); all-time popularity is the separate ``popularity`` reference. Nothing shorter than a
# week: a served list is computed by a training run and used until the next one, for days, while the
# validation scores each customer right before their basket, so it cannot see what a shorter memory
# costs between computing a list and using it. Measured on Ta Feng: validation (as of each basket)
# prefers 1 day (0.0303 NDCG@10 against 0.0225 for 7 days), but the list exported at the end of the
# data scores 0.0207 with 1 day and 0.0253 with 7 on the held-out last orders.
HALF_LIFE_GRID_DAYS = (7.0, 14.0, 28.0, 91.0)
FALLBACK_HALF_LIFE_DAYS = 14.0  # nothing to choose on (no validation targets)


def check_half_life(half_life_days: float | None) -> None:
    """A half-life is a positive number of days (None: none, or chosen on validation)."""
    if half_life_days is not None and not float(half_life_days) > 0:
        raise ValueError(f"half_life_days must be a positive number of days, not {half_life_days!r}.")


@dataclass
class PopularityConfig:
    half_life_days: float | None = None  # None = no time decay
    use_weights: bool = True  # False = count events
    seed: int = 0

    def __post_init__(self) -> None:
        check_half_life(self.half_life_days)


@dataclass
class TrendingConfig:
    half_life_days: float | None = None  # None = chosen on the validation targets at fit time
    use_weights: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        check_half_life(self.half_life_days)


def _decay(ages_seconds: np.ndarray, half_life_days: float | None) -> np.ndarray | float:
    if not half_life_days:
        return 1.0
    return np.power(0.5, np.maximum(ages_seconds, 0.0) / (half_life_days * DAY))


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """The (at most) ``n`` best-scoring items with a positive score, best first."""
    order = np.argsort(-scores, kind="stable")[: max(0, int(n))]
    return order[scores[order] > 0]


class Popularity(Recommender):
    algorithm = "popularity"
    config_cls = PopularityConfig

    def _fit(self, train: Dataset, inputs: FitInputs) -> None:
        self._scores = self._popularity(train, self.config.half_life_days)
        inputs.report_single_pass()

    def _popularity(self, ds: Dataset, half_life_days: float | None) -> np.ndarray:
        w = ds.weight.astype(np.float64) if self.config.use_weights else np.ones(ds.n_events)
        if ds.n_events:
            w = w * _decay(ds.ts.max() - ds.ts, half_life_days)
        return np.bincount(ds.item_idx, weights=w, minlength=ds.n_items).astype(np.float32)

    # ------------------------------------------------------------ as of a time
    def _set_histories(self, ds: Dataset) -> None:
        order = np.argsort(ds.ts, kind="stable")
        w = ds.weight[order].astype(np.float64) if self.config.use_weights else np.ones(ds.n_events)
        self._events = (ds.ts[order], ds.item_idx[order], w)
        self._now_user: np.ndarray | None = None

    def set_now(self, now: np.ndarray | None) -> None:
        """Score customer ``u`` as of ``now[u]`` (seconds; one per user of the index) from the events
        of the histories strictly before it; nan or ``now=None``: the fitted scores (every event)."""
        self._now_user = None if now is None else np.asarray(now, np.float64)

    def _as_of(self, times: np.ndarray) -> np.ndarray:
        """[len(times), n_items] popularity as of each of the sorted ``times``: one pass over the
        time-sorted events, the running vector decayed from one time to the next."""
        ts, items, w = self._events
        hl = self.config.half_life_days
        out = np.empty((len(times), self.n_items), np.float32)
        running = np.zeros(self.n_items)
        start, previous = 0, None
        for row, t in enumerate(times):
            end = int(np.searchsorted(ts, t, side="left"))
            if previous is not None:
                running *= _decay(np.array(t - previous), hl)
            if end > start:
                running += np.bincount(items[start:end], weights=w[start:end] * _decay(t - ts[start:end], hl),
                                       minlength=self.n_items)
            out[row] = running
            start, previous = end, t
        return out

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        user_idx = np.atleast_1d(np.asarray(user_idx, dtype=np.int64))
        out = np.tile(self._scores, (len(user_idx), 1))
        now_user = getattr(self, "_now_user", None)
        if now_user is None or getattr(self, "_events", None) is None:
            return out
        now = now_user[user_idx]
        timed = np.isfinite(now)
        if timed.any():
            times, rows = np.unique(now[timed], return_inverse=True)
            out[timed] = self._as_of(times)[rows.reshape(-1)]
        return out

    def score_histories(self, histories: list[list[int]]) -> np.ndarray:
        return np.tile(self._scores, (len(histories), 1))

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"scores": self._scores}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self._scores = arrays["scores"]
        self._events = None


class Trending(Popularity):
    """Popularity with exponential time decay; the half-life is chosen on the validation targets
    (as of each target's time, bought items excluded, NDCG@10) unless the config fixes it."""

    algorithm = "trending"
    config_cls = TrendingConfig

    def _fit(self, train: Dataset, inputs: FitInputs) -> None:
        if self.config.half_life_days is None:
            self.config.half_life_days = self._choose_half_life(train, inputs)
        self.fit_info["half_life_days"] = self.config.half_life_days
        super()._fit(train, inputs)

    def trending_now(self, n: int) -> np.ndarray:
        """The ``n`` items selling most now (the decayed scores of the fit), best first: what a
        reason may call "trending now"."""
        return _top(self._scores, n)

    def _choose_half_life(self, train: Dataset, inputs: FitInputs) -> float:
        from ..metrics import evaluate

        if inputs.valid is None or not len(inputs.valid) or inputs.valid_now is None:
            return FALLBACK_HALF_LIFE_DAYS
        measured = {}
        self.set_now(inputs.valid_now)
        for half_life in HALF_LIFE_GRID_DAYS:
            self.config.half_life_days = half_life
            self._scores = self._popularity(train, half_life)
            measured[half_life] = evaluate(self, train, inputs.valid, k=10, with_coverage=False)["ndcg@10"]
        self.set_now(None)
        self.fit_info["half_life_valid_ndcg@10"] = {str(h): round(v, 5) for h, v in measured.items()}
        return max(measured, key=lambda h: (measured[h], h))  # ties: the longer (steadier) half-life

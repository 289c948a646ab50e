"""Buy again: rank a customer's OWN past items by how likely they are in the next basket.

Why a separate model: replenishment is a different question from discovery. Whether a customer
buys milk again depends on how often they buy it and how long ago they last did, compared with
their (or, when unknown, everybody's) usual re-purchase interval, not on what similar customers
buy. Features of a (customer, past item) pair, all computed from timestamps of baskets:

- ``log1p(times bought)`` and the share of the customer's baskets that contain the item;
- ``log1p(days since last bought)``;
- "due-ness": ``log((days since last + 1) / (interval + 1))`` and its square, where the interval
  is the customer's own mean re-purchase interval of the item when they bought it at least twice,
  else the item's typical interval over all customers, else the global median;
- the item's repeat rate (share of its buyers who bought it again, smoothed), and a "bought
  at least twice" flag.

A logistic regression over those features is fit on the training data itself (each customer's
last training basket is the label for their earlier history), by Newton's method in NumPy:
small, deterministic and explainable. Items the customer never bought score ``-inf``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import Dataset
from .base import FitInputs, Recommender

DAY = 86400.0
N_FEATURES = 8


@dataclass
class BuyAgainConfig:
    # "learned" (the ranker) | "frequency" (most often bought first, ties: most recent) |
    # "recency" (most recently bought first): the two baselines it is measured against.
    mode: str = "learned"
    l2: float = 1.0
    max_train_users: int = 20000  # users sampled to build the logistic regression's examples
    newton_steps: int = 25
    seed: int = 0


def _pair_stats(rows: np.ndarray, items: np.ndarray, ts: np.ndarray, n_items: int) -> dict[str, np.ndarray]:
    """Per distinct (row, item): times bought (distinct timestamps = baskets), first and last ts."""
    key = rows.astype(np.int64) * n_items + items.astype(np.int64)
    order = np.lexsort((ts, key))
    key, ts_sorted = key[order], ts[order]
    # one purchase per basket: same pair and same timestamp count once
    fresh = np.r_[True, (key[1:] != key[:-1]) | (ts_sorted[1:] != ts_sorted[:-1])] if len(key) else np.zeros(0, bool)
    key, ts_sorted = key[fresh], ts_sorted[fresh]
    if not len(key):
        empty = np.zeros(0, np.int64)
        return {"row": empty, "item": empty, "count": empty, "first": np.zeros(0), "last": np.zeros(0)}
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(key)] - 1
    pair = key[starts]
    return {"row": pair // n_items, "item": pair % n_items, "count": (ends - starts + 1).astype(np.int64),
            "first": ts_sorted[starts], "last": ts_sorted[ends]}


class BuyAgain(Recommender):
    algorithm = "buy_again"
    config_cls = BuyAgainConfig

    def __init__(self, config: BuyAgainConfig | None = None, **params) -> None:
        super().__init__(config, **params)
        self._w = np.zeros(N_FEATURES + 1, np.float64)
        self._item_interval = np.zeros(0, np.float32)  # days; nan = unknown
        self._item_repeat = np.zeros(0, np.float32)
        self._global_interval = 30.0
        self._hist_rows: list[list[tuple[int, float]]] = []
        self._now = 0.0

    # ---------------------------------------------------------------- features
    def _features(self, stats: dict[str, np.ndarray], n_baskets: np.ndarray, now: np.ndarray) -> tuple:
        """(features [n_pairs, N_FEATURES], interval_days [n_pairs]) for the pairs in ``stats``."""
        count = stats["count"].astype(np.float64)
        days_since = np.maximum(now - stats["last"], 0.0) / DAY
        own = np.where(count >= 2, (stats["last"] - stats["first"]) / DAY / np.maximum(count - 1, 1), np.nan)
        item_iv = self._item_interval[stats["item"]].astype(np.float64) if len(self._item_interval) else np.full(
            len(count), np.nan)
        interval = np.where(np.isfinite(own), own, np.where(np.isfinite(item_iv), item_iv, self._global_interval))
        due = np.log1p(days_since) - np.log1p(interval)
        repeat = self._item_repeat[stats["item"]].astype(np.float64) if len(self._item_repeat) else np.zeros(len(count))
        share = count / np.maximum(n_baskets[stats["row"]], 1.0)
        feats = np.stack([
            np.log1p(count), share, np.log1p(days_since), due, due**2,
            np.log(repeat + 1e-3), (count >= 2).astype(np.float64), np.log1p(interval),
        ], axis=1)
        return feats, interval

    @staticmethod
    def _n_baskets(rows: np.ndarray, ts: np.ndarray, n_rows: int) -> np.ndarray:
        if not len(rows):
            return np.zeros(n_rows)
        key = np.unique(np.stack([rows.astype(np.float64), ts], axis=1), axis=0)
        return np.bincount(key[:, 0].astype(np.int64), minlength=n_rows).astype(np.float64)

    # --------------------------------------------------------------------- fit
    def _fit(self, train: Dataset, inputs: FitInputs) -> None:
        cfg = self.config
        if cfg.mode not in ("learned", "frequency", "recency"):
            raise ValueError(f"mode must be learned, frequency or recency, not {cfg.mode!r}.")
        n = train.n_items
        # Item-level statistics over all of train: typical interval and repeat rate.
        stats = _pair_stats(train.user_idx, train.item_idx, train.ts, n)
        multi = stats["count"] >= 2
        own = (stats["last"][multi] - stats["first"][multi]) / DAY / (stats["count"][multi] - 1)
        self._global_interval = float(np.median(own)) if len(own) else 30.0
        interval = np.full(n, np.nan, np.float32)
        if len(own):
            order = np.argsort(stats["item"][multi], kind="stable")
            it, iv = stats["item"][multi][order], own[order]
            starts = np.flatnonzero(np.r_[True, it[1:] != it[:-1]])
            ends = np.r_[starts[1:], len(it)]
            for s, e in zip(starts, ends, strict=True):
                interval[it[s]] = np.median(iv[s:e])
        self._item_interval = interval
        buyers = np.bincount(stats["item"], minlength=n).astype(np.float64)
        repeaters = np.bincount(stats["item"][multi], minlength=n).astype(np.float64)
        global_rate = repeaters.sum() / max(buyers.sum(), 1.0)
        self._item_repeat = ((repeaters + 5 * global_rate) / (buyers + 5)).astype(np.float32)

        # Examples: each customer's last training basket is the label for their earlier history.
        basket = train.basket
        order = np.lexsort((basket, train.ts, train.user_idx))
        u, b, ts, it = train.user_idx[order], basket[order], train.ts[order], train.item_idx[order]
        last_b = np.full(train.n_users, -1, np.int64)
        last_b[u] = b  # sorted by time: the last write per user is their last basket
        is_label = b == last_b[u]
        hist_mask = ~is_label
        users_with_hist = np.unique(u[hist_mask])
        users_with_label = np.unique(u[is_label])
        users = np.intersect1d(users_with_hist, users_with_label)
        rng = np.random.default_rng(cfg.seed)
        if len(users) > cfg.max_train_users:
            users = np.sort(rng.choice(users, cfg.max_train_users, replace=False))
        pick = np.zeros(train.n_users, bool)
        pick[users] = True
        hm = hist_mask & pick[u]
        if not hm.any():
            self._w = np.zeros(N_FEATURES + 1)
            self._w[1], self._w[2] = 1.0, -0.1  # no data: more often and more recent first
            return
        hstats = _pair_stats(u[hm], it[hm], ts[hm], n)
        label_time = np.zeros(train.n_users)
        lm = is_label & pick[u]
        label_time[u[lm]] = ts[lm]
        x, _ = self._features(hstats, self._n_baskets(u[hm], ts[hm], train.n_users), label_time[hstats["row"]])
        positives = set((u[lm] * n + it[lm]).tolist())
        y = np.fromiter(((r * n + i) in positives for r, i in zip(hstats["row"], hstats["item"], strict=True)),
                        bool, len(hstats["row"])).astype(np.float64)
        self._mu, self._sd = x.mean(0), x.std(0) + 1e-6
        self._w = _logistic_newton(np.c_[np.ones(len(x)), (x - self._mu) / self._sd], y, cfg.l2, cfg.newton_steps)
        self.fit_info = {"n_examples": int(len(y)), "positive_rate": float(y.mean()) if len(y) else 0.0,
                         "global_interval_days": round(self._global_interval, 2)}
        inputs.report_single_pass()

    # ------------------------------------------------------------------ scoring
    def score_timed_histories(self, histories: list[list[tuple[int, float]]], now: float | np.ndarray) -> np.ndarray:
        """float32 [n, n_items]: each customer's past items scored, never-bought items ``-inf``.
        ``now``: the time the list is for (one for all, or one per customer)."""
        n = len(histories)
        out = np.full((n, self.n_items), -np.inf, np.float32)
        rows = np.repeat(np.arange(n), [len(h) for h in histories])
        if not len(rows):
            return out
        flat = [x for h in histories for x in h]
        items = np.fromiter((x[0] for x in flat), np.int64, len(flat))
        ts = np.fromiter((x[1] for x in flat), np.float64, len(flat))
        stats = _pair_stats(rows, items, ts, self.n_items)
        now = np.broadcast_to(np.asarray(now, np.float64), (n,))[stats["row"]]
        if self.config.mode == "frequency":
            s = stats["count"] + 1e-3 * np.tanh((stats["last"] - now) / DAY / 365.0 + 1.0)
        elif self.config.mode == "recency":
            s = (stats["last"] - now) / DAY + 1e-4 * stats["count"]
        else:
            x, _ = self._features(stats, self._n_baskets(rows, ts, n), now)
            s = self._linear(x)
        out[stats["row"], stats["item"]] = s.astype(np.float32)
        return out

    def _linear(self, x: np.ndarray) -> np.ndarray:
        mu = getattr(self, "_mu", np.zeros(x.shape[1]))
        sd = getattr(self, "_sd", np.ones(x.shape[1]))
        return self._w[0] + ((x - mu) / sd) @ self._w[1:]

    def explain(self, history: list[tuple[int, float]], item_idx: int, now: float) -> dict:
        """Why ``item_idx`` is on the list: times bought, days since, typical interval (days or None)."""
        stamps = sorted({float(t) for i, t in history if int(i) == int(item_idx)})
        times = len(stamps)
        days_since = (float(now) - stamps[-1]) / DAY if stamps else float("nan")
        interval: float | None = None
        if times >= 2:
            interval = (stamps[-1] - stamps[0]) / DAY / (times - 1)
        elif 0 <= item_idx < len(self._item_interval) and np.isfinite(self._item_interval[item_idx]):
            interval = float(self._item_interval[item_idx])
        return {"kind": "buy_again", "times_bought": times, "days_since_last": round(max(days_since, 0.0), 2),
                "interval_days": None if interval is None else round(interval, 2)}

    def _set_histories(self, ds: Dataset) -> None:
        order = np.lexsort((ds.ts, ds.user_idx))
        counts = np.bincount(ds.user_idx, minlength=ds.n_users)
        splits = np.cumsum(counts)[:-1]
        items = np.split(ds.item_idx[order], splits)
        stamps = np.split(ds.ts[order], splits)
        self._hist_rows = [list(zip(i.tolist(), t.tolist(), strict=True)) for i, t in zip(items, stamps, strict=True)]
        self._now = float(ds.ts.max()) if ds.n_events else 0.0
        self._now_user = None

    def set_now(self, now: np.ndarray | float | None) -> None:
        """Score ``score(user_idx)`` as of ``now`` (one time, or one per user of the index); None: data end."""
        self._now_user = None if now is None or np.isscalar(now) else np.asarray(now, np.float64)
        if now is not None and np.isscalar(now):
            self._now = float(now)

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        user_idx = np.atleast_1d(np.asarray(user_idx, dtype=np.int64))
        now_user = getattr(self, "_now_user", None)
        if now_user is None:
            return self.score_timed_histories([self._hist_rows[u] for u in user_idx], self._now)
        now = np.where(np.isfinite(now_user[user_idx]), now_user[user_idx], self._now)
        return self.score_timed_histories([self._hist_rows[u] for u in user_idx], now)

    def score_histories(self, histories: list[list[int]]) -> np.ndarray:
        """Untimed histories: every purchase counts as one basket at the same time (counts only)."""
        return self.score_timed_histories([[(i, float(n)) for n, i in enumerate(h)] for h in histories],
                                          float(max((len(h) for h in histories), default=0)))

    # -------------------------------------------------------------- persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        lens = np.array([len(h) for h in self._hist_rows], np.int64)
        flat = [x for h in self._hist_rows for x in h]
        return {
            "w": self._w, "mu": getattr(self, "_mu", np.zeros(N_FEATURES)),
            "sd": getattr(self, "_sd", np.ones(N_FEATURES)),
            "item_interval": self._item_interval, "item_repeat": self._item_repeat,
            "scalars": np.array([self._global_interval, self._now]),
            "hist_len": lens, "hist_item": np.fromiter((x[0] for x in flat), np.int64, len(flat)),
            "hist_ts": np.fromiter((x[1] for x in flat), np.float64, len(flat)),
        }

    def _set_arrays(self, a: dict[str, np.ndarray]) -> None:
        self._w, self._mu, self._sd = a["w"], a["mu"], a["sd"]
        self._item_interval, self._item_repeat = a["item_interval"], a["item_repeat"]
        self._global_interval, self._now = float(a["scalars"][0]), float(a["scalars"][1])
        bounds = np.r_[0, np.cumsum(a["hist_len"])]
        items, ts = a["hist_item"].tolist(), a["hist_ts"].tolist()
        self._hist_rows = [list(zip(items[s:e], ts[s:e], strict=True)) for s, e in zip(bounds[:-1], bounds[1:],
                                                                                        strict=True)]
        self._now_user = None


def _logistic_newton(x: np.ndarray, y: np.ndarray, l2: float, steps: int) -> np.ndarray:
    """L2-regularised logistic regression (intercept unpenalised) by Newton's method."""
    w = np.zeros(x.shape[1])
    reg = np.full(x.shape[1], l2)
    reg[0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (p - y) + reg * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(reg + 1e-6)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w

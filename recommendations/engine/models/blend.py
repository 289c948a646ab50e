"""EASE + trending: a customer's co-purchase structure mixed with what is selling now.

A grocery or retail basket has two complementary signals. EASE (:mod:`.ease`) knows what goes with
what this customer bought, but its weights are fit once and know nothing of the week; trending
(:mod:`.popularity`) knows what sells now, the same for everybody. The blend ranks by

    score_u = (1 - w) * z_u(EASE_u) + w * z_u(trending)

where ``z_u`` standardises a score vector over the items customer ``u`` has not bought (mean 0,
standard deviation 1: the list that is served never holds a bought item, so their scores must not
set the scale). Why a z-score: the two raw scales differ by orders of magnitude, and EASE's grows
with the length of a customer's history; standardised, ``w`` means the same thing on every shop and
every customer. The trend weight ``w`` (from ``TREND_WEIGHT_GRID``, 0 = EASE's order, 1 = trending's)
and the half-life (``HALF_LIFE_GRID_DAYS``, as ``trending``) are chosen jointly on the validation
targets, NDCG@10 with bought items excluded and the trending part scored as of each validation
basket (``Recommender.set_now``), in one pass that scores EASE once per customer batch. The config
fixes either. ``fit_info["blend_valid_ndcg@10"]`` keeps the grid.

Items outside EASE's cap (``max_items``) take the customer's lowest covered EASE score, so in the
EASE part they rank below every covered item, as in EASE itself, while the trending part can still
lift one that sells now.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..data import Dataset
from ..metrics import target_ranks
from .base import FitInputs, Recommender
from .ease import EASE, EASEConfig
from .itemknn import _histories_csr
from .popularity import (
    FALLBACK_HALF_LIFE_DAYS,
    HALF_LIFE_GRID_DAYS,
    Popularity,
    PopularityConfig,
    _top,
    check_half_life,
)

TREND_WEIGHT_GRID = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)
FALLBACK_TREND_WEIGHT = 0.5  # nothing to choose on (no validation targets)
BATCH_USERS = 512  # customers per scoring batch while choosing (a few [512, n_items] arrays at a time)


@dataclass
class EASETrendingConfig:
    trend_weight: float | None = None  # None = chosen on the validation targets at fit time
    half_life_days: float | None = None  # None = chosen on the validation targets at fit time
    l2: float = 500.0  # EASE's
    max_items: int = 10000  # EASE's cap (the product passes RECOMMENDATIONS["EASE_MAX_ITEMS"])
    use_weights: bool = True  # trending's (EASE is fit on the binary matrix, as the `ease` candidate)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.trend_weight is not None and not 0.0 <= float(self.trend_weight) <= 1.0:
            raise ValueError(f"trend_weight must be between 0 and 1, not {self.trend_weight!r}.")
        check_half_life(self.half_life_days)


def standardise(scores: np.ndarray, seen: sp.csr_matrix) -> np.ndarray:
    """Each row of ``scores`` minus its mean, over its standard deviation, both taken over the
    items the row's customer has not bought (``seen``, same shape; a zero spread divides by 1)."""
    s = np.asarray(scores, np.float32)  # [batch, n_items] blocks: float32 halves the memory
    n = s.shape[1]
    coo = seen.tocoo()
    picked = s[coo.row, coo.col].astype(np.float64)
    count = n - np.bincount(coo.row, minlength=len(s))
    total = s.sum(1, dtype=np.float64) - np.bincount(coo.row, weights=picked, minlength=len(s))
    # float32 squares summed in float64: no float64 copy of the block
    total_sq = np.square(s).sum(1, dtype=np.float64) - np.bincount(coo.row, weights=picked * picked,
                                                                   minlength=len(s))
    count = np.maximum(count, 1)
    mean = total / count
    sd = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    sd[sd <= 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0
    out = s - mean[:, None].astype(np.float32)
    out /= sd[:, None].astype(np.float32)
    return out


def top_k_gains(scores: np.ndarray, rows: np.ndarray, items: np.ndarray, k: int = 10) -> np.ndarray:
    """NDCG@k gain of each target (``scores[rows[j], items[j]]``), ranks as :func:`..metrics.target_ranks`
    (pessimistic ties; a -inf target scores 0); only targets that can reach the top k are ranked."""
    t = scores[rows, items]
    kk = min(k, scores.shape[1])
    kth = np.partition(scores, -kk, axis=1)[:, -kk]
    gains = np.zeros(len(items))
    near = np.flatnonzero((t >= kth[rows]) & np.isfinite(t))
    if len(near):
        ranks = target_ranks(scores[rows[near]], items[near])
        gains[near] = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
    return gains


class EASETrending(Recommender):
    algorithm = "ease_trending"
    config_cls = EASETrendingConfig

    # ------------------------------------------------------------------ fitting
    def _fit(self, train: Dataset, inputs: FitInputs) -> None:
        cfg = self.config
        self._ease = EASE(EASEConfig(l2=cfg.l2, max_items=cfg.max_items)).fit(train)
        self._trend = None
        if cfg.trend_weight is None or cfg.half_life_days is None:
            cfg.trend_weight, cfg.half_life_days = self._choose(train, inputs)
        if self._trend is None or self._trend.config.half_life_days != cfg.half_life_days:
            self._trend = self._trend_model(train, cfg.half_life_days)
        self.fit_info.update(trend_weight=cfg.trend_weight, half_life_days=cfg.half_life_days,
                             n_active_items=len(self._ease._active))
        inputs.report_single_pass()

    def _trend_model(self, train: Dataset, half_life_days: float | None) -> Popularity:
        config = PopularityConfig(half_life_days=half_life_days, use_weights=self.config.use_weights)
        return Popularity(config).fit(train)

    def _choose(self, train: Dataset, inputs: FitInputs, k: int = 10) -> tuple[float, float]:
        """(trend weight, half-life) with the best validation NDCG@k; ties: the lower weight (the
        personal signal), then the longer half-life (the steadier list)."""
        cfg = self.config
        if inputs.valid is None or not len(inputs.valid) or inputs.valid_now is None:
            return (FALLBACK_TREND_WEIGHT if cfg.trend_weight is None else cfg.trend_weight,
                    FALLBACK_HALF_LIFE_DAYS if cfg.half_life_days is None else cfg.half_life_days)
        weights = TREND_WEIGHT_GRID if cfg.trend_weight is None else (cfg.trend_weight,)
        half_lives = HALF_LIFE_GRID_DAYS if cfg.half_life_days is None else (cfg.half_life_days,)
        trends = {h: self._trend_model(train, h) for h in half_lives}
        for model in trends.values():
            model.set_now(inputs.valid_now)
        targets = np.asarray(inputs.valid, np.int64).reshape(-1, 2)
        users, inverse = np.unique(targets[:, 0], return_inverse=True)
        inverse = inverse.reshape(-1)
        seen = train.csr(binary=True)
        gains = {(w, h): np.zeros(len(targets)) for w in weights for h in half_lives}
        for lo in range(0, len(users), BATCH_USERS):
            batch = users[lo : lo + BATCH_USERS]
            pick = np.flatnonzero((inverse >= lo) & (inverse < lo + len(batch)))
            rows, items = inverse[pick] - lo, targets[pick, 1]
            seen_b = seen[batch]
            bought = seen_b.tocoo()
            z_ease = standardise(self._ease_part(self._ease._x[batch]), seen_b)
            for n, (h, model) in enumerate(trends.items()):
                z_trend = standardise(model.score(batch), seen_b)
                for w in weights:
                    if w == 0.0 and n:  # EASE's order alone: the same for every half-life
                        gains[(w, h)][pick] = gains[(w, half_lives[0])][pick]
                        continue
                    blended = np.float32(1.0 - w) * z_ease + np.float32(w) * z_trend
                    blended[bought.row, bought.col] = -np.inf
                    gains[(w, h)][pick] = top_k_gains(blended, rows, items, k)
        for model in trends.values():
            model.set_now(None)
        measured = {key: float(g.mean()) for key, g in gains.items()}
        self.fit_info["blend_valid_ndcg@10"] = {f"w={w:g},half_life={h:g}": round(v, 5)
                                                for (w, h), v in measured.items()}
        w, h = max(measured, key=lambda key: (measured[key], -key[0], key[1]))
        self._trend = trends[h]
        return w, h

    # ------------------------------------------------------------------ scoring
    def _ease_part(self, x: sp.csr_matrix) -> np.ndarray:
        """EASE's scores with the items outside its cap at the row's lowest covered score."""
        ease = self._ease
        covered = np.asarray(x[:, ease._active] @ ease._b, dtype=np.float32)
        out = np.empty((x.shape[0], self.n_items), np.float32)
        out[:] = covered.min(1, keepdims=True) if covered.shape[1] else 0.0
        out[:, ease._active] = covered
        return out

    def _blend(self, ease_scores: np.ndarray, trend_scores: np.ndarray, seen: sp.csr_matrix) -> np.ndarray:
        w = float(self.config.trend_weight)
        out = standardise(ease_scores, seen)
        out *= np.float32(1.0 - w)
        out += np.float32(w) * standardise(trend_scores, seen)
        return out

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        user_idx = np.atleast_1d(np.asarray(user_idx, dtype=np.int64))
        return self._blend(self._ease_part(self._ease._x[user_idx]), self._trend.score(user_idx),
                           self._seen[user_idx])

    def score_histories(self, histories: list[list[int]]) -> np.ndarray:
        x = _histories_csr(histories, self.n_items)
        return self._blend(self._ease_part(x), self._trend.score_histories(histories), x)

    def trending_now(self, n: int) -> np.ndarray:
        """The ``n`` items the trending part ranks first (as of the fit), for the "trending now" reason."""
        return _top(self._trend._scores, n)

    def set_now(self, now: np.ndarray | None) -> None:
        """The trending part as of ``now`` (see :meth:`Popularity.set_now`); EASE has no moment."""
        trend = getattr(self, "_trend", None)
        if trend is not None:
            trend.set_now(now)

    # -------------------------------------------------------------- histories
    def _set_histories(self, ds: Dataset) -> None:
        for part in (getattr(self, "_ease", None), getattr(self, "_trend", None)):
            if part is not None:  # None while fit() sets the first histories, before _fit
                part.set_histories(ds)

    def _forget_user_rows(self, rows: np.ndarray) -> None:
        self._ease._forget_user_rows(rows)

    # ------------------------------------------------------------ persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {**{f"ease_{k}": v for k, v in self._ease._get_arrays().items()},
                **{f"trend_{k}": v for k, v in self._trend._get_arrays().items()}}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        cfg = self.config
        self._ease = EASE(EASEConfig(l2=cfg.l2, max_items=cfg.max_items))
        self._trend = Popularity(PopularityConfig(half_life_days=cfg.half_life_days, use_weights=cfg.use_weights))
        for part, prefix in ((self._ease, "ease_"), (self._trend, "trend_")):
            part.n_items, part.n_users = self.n_items, self.n_users
            part._set_arrays({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})

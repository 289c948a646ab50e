"""Popularity: the baseline every other model must beat.

Score of an item = sum of its interaction weights, optionally decayed
exponentially with age (``half_life_days``) so that what is popular *now* wins.
Same scores for every customer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import Dataset
from .base import FitInputs, Recommender


@dataclass
class PopularityConfig:
    half_life_days: float | None = None  # None = no time decay
    use_weights: bool = True  # False = count events
    seed: int = 0


class Popularity(Recommender):
    algorithm = "popularity"
    config_cls = PopularityConfig

    def _fit(self, train: Dataset, inputs: FitInputs) -> None:
        cfg = self.config
        w = train.weight.astype(np.float64) if cfg.use_weights else np.ones(train.n_events)
        if cfg.half_life_days and train.n_events:
            age_days = (train.ts.max() - train.ts) / 86400.0
            w = w * np.power(0.5, age_days / cfg.half_life_days)
        pop = np.bincount(train.item_idx, weights=w, minlength=train.n_items)
        self._scores = pop.astype(np.float32)
        inputs.report_single_pass()

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.tile(self._scores, (len(np.atleast_1d(user_idx)), 1))

    def score_histories(self, histories: list[list[int]]) -> np.ndarray:
        return np.tile(self._scores, (len(histories), 1))

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"scores": self._scores}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self._scores = arrays["scores"]

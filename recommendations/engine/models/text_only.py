"""Text-only baseline: the customer's recent items' text vectors averaged, items ranked by cosine.

Why: it is the yardstick for cold items (products with few or no purchases), which only the
text path can reach; the flagship must hit cold targets at least as often as this does. The
same profile is what the flagship blends in for cold items (see ``Sequential``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import Dataset
from .base import FitInputs, Recommender


@dataclass
class TextOnlyConfig:
    n_recent: int = 20  # latest distinct items that make the profile
    seed: int = 0


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


def text_profiles(histories: list[np.ndarray], text: np.ndarray, n_recent: int) -> np.ndarray:
    """[n, dim] unit vectors: mean of the normalised text vectors of each history's latest
    ``n_recent`` distinct items (zeros for an empty history)."""
    out = np.zeros((len(histories), text.shape[1]), np.float32)
    for r, h in enumerate(histories):
        h = np.asarray(h, np.int64)
        if not len(h):
            continue
        _, first = np.unique(h[::-1], return_index=True)  # latest occurrence of each item
        recent = h[::-1][np.sort(first)][:n_recent]
        out[r] = text[recent].mean(0)
    return normalise(out)


class TextOnly(Recommender):
    algorithm = "text_only"
    config_cls = TextOnlyConfig

    def _fit(self, train: Dataset, inputs: FitInputs) -> None:
        if inputs.item_embeddings is None:
            raise ValueError("The text-only baseline needs item text embeddings.")
        self._text = normalise(inputs.item_embeddings)
        self._set_histories(train)

    def _set_histories(self, ds: Dataset) -> None:
        if hasattr(self, "_text"):
            self._hist = ds.sequences()

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        return self.score_histories([self._hist[u] for u in np.atleast_1d(user_idx)])

    def score_histories(self, histories: list) -> np.ndarray:
        return text_profiles(histories, self._text, self.config.n_recent) @ self._text.T

"""Text-only baseline: the customer's recent items' text vectors averaged, items ranked by cosine.

Why: it is the yardstick for cold items (products with few or no purchases), which only the
text path can reach; the flagship must hit cold targets at least as often as this does. The
same profile can rank the cold items that the cold slots (``engine.cold_slots``) serve
(``match="profile"``; their default matches each cold item to the nearest recent item instead).

Ties: products that share their text (the flavours or variants of one product line: on
completejourney 63% of the products share their text exactly with another one) get exactly the
same cosine. The metrics count a tie against the target (a scorer that cannot tell items apart
gets no credit for them), and ``top_k`` picks arbitrarily among ties, so unordered ties would
make the measured list a different, worse one than the list served: a target among more than
ten equal-text products could never be a hit. So the scores order every tie: by cosine, then
by popularity (the variant more customers bought first), then by index (:func:`order_ties`).
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


def order_ties(scores: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    """Row-wise ranks (float32, 0 = worst, higher = better) of ``scores`` [n, m] with ties broken
    by ``popularity`` [m] (higher first) and then by item index (lower first): a strict order,
    so the list measured is exactly the list served."""
    scores = np.asarray(scores)
    n, m = scores.shape
    index = np.broadcast_to(-np.arange(m, dtype=np.float64), scores.shape)
    pop = np.broadcast_to(np.asarray(popularity, np.float64), scores.shape)
    order = np.lexsort((index, pop, scores), axis=-1)  # ascending: worst first
    out = np.empty((n, m), np.float32)
    np.put_along_axis(out, order, np.broadcast_to(np.arange(m, dtype=np.float32), (n, m)), axis=-1)
    return out


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
        """Rank scores: cosine to the text profile, ties ordered (see :func:`order_ties`)."""
        cos = text_profiles(histories, self._text, self.config.n_recent) @ self._text.T
        return order_ties(cos, self._item_pop)

"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data").

Closed form: ``P = (X^T X + lambda I)^-1``, ``B = -P / diag(P)``, ``diag(B) = 0``;
a customer's scores are ``x_u B``. It is a strong item-to-item model but needs a
dense n_items x n_items inverse, so the catalogue is capped at ``max_items`` (the
most-interacted items); items outside the cap score ``OUTSIDE_SCORE`` (never
recommended), which only affects the long tail that has no data anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..data import Dataset
from .base import FitInputs, Recommender, clear_rows
from .itemknn import _histories_csr

OUTSIDE_SCORE = -1e6


@dataclass
class EASEConfig:
    l2: float = 500.0
    max_items: int = 12000  # dense inverse is O(max_items^2) memory, O(max_items^3) time
    use_weights: bool = False
    seed: int = 0


class EASE(Recommender):
    algorithm = "ease"
    config_cls = EASEConfig

    def _fit(self, train: Dataset, inputs: FitInputs) -> None:
        cfg = self.config
        counts = train.item_counts()
        active = np.flatnonzero(counts > 0)
        if len(active) > cfg.max_items:
            active = np.sort(np.argsort(-counts, kind="stable")[: cfg.max_items])
        self._active = active.astype(np.int64)
        x = train.csr(binary=not cfg.use_weights)[:, active]
        # float64 for small catalogues; float32 halves memory and time for large ones
        dtype = np.float64 if len(active) <= 4000 else np.float32
        g = (x.T @ x).toarray().astype(dtype)
        g[np.diag_indices_from(g)] += cfg.l2
        p = np.linalg.inv(g)
        b = -p / np.diag(p)[None, :]
        b[np.diag_indices_from(b)] = 0.0
        self._b = b.astype(np.float32)
        inputs.report_single_pass(n_active_items=len(active))

    def _set_histories(self, ds: Dataset) -> None:
        self._x = ds.csr(binary=not self.config.use_weights)

    def _forget_user_rows(self, rows: np.ndarray) -> None:
        self._x = clear_rows(self._x, rows)

    def _scores_from(self, x: sp.csr_matrix) -> np.ndarray:
        out = np.full((x.shape[0], self.n_items), OUTSIDE_SCORE, dtype=np.float32)
        out[:, self._active] = np.asarray(x[:, self._active] @ self._b, dtype=np.float32)
        return out

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._scores_from(self._x[np.atleast_1d(np.asarray(user_idx, dtype=np.int64))])

    def score_histories(self, histories: list[list[int]]) -> np.ndarray:
        return self._scores_from(_histories_csr(histories, self.n_items))

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {
            "b": self._b, "active": self._active,
            "x_data": self._x.data, "x_indices": self._x.indices, "x_indptr": self._x.indptr,
        }

    def _set_arrays(self, a: dict[str, np.ndarray]) -> None:
        self._b, self._active = a["b"], a["active"]
        self._x = sp.csr_matrix((a["x_data"], a["x_indices"], a["x_indptr"]), shape=(self.n_users, self.n_items))

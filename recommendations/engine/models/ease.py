"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data").

Closed form: ``P = (X^T X + lambda I)^-1``, ``B = -P / diag(P)``, ``diag(B) = 0``;
a customer's scores are ``x_u B``. It is a strong item-to-item model but needs a
dense n_items x n_items inverse (O(n^3) time, O(n^2) memory), so the model covers only the
``max_items`` most-purchased items (ties: lower index). Items outside the cap rank below every
covered item, in popularity order among themselves (just below ``OUTSIDE_SCORE``): the long tail
has too few events for an item-to-item weight anyway, and a discover list of a few dozen items
never reaches it. With ``max_items`` >= the items with events, nothing changes.

The inverse runs in torch (MKL LAPACK on the CPU wheel: measured ~1.8x faster than numpy's
bundled OpenBLAS ``inv`` for the same float32 matrix), one code path on CPU and GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..data import Dataset
from .base import FitInputs, Recommender, clear_rows
from .itemknn import _histories_csr

OUTSIDE_SCORE = -1e6  # items outside the cap score in (OUTSIDE_SCORE - TAIL_SPREAD, OUTSIDE_SCORE)
TAIL_SPREAD = 1e5  # float32 still separates ~10^6 popularity levels at this magnitude


@dataclass
class EASEConfig:
    l2: float = 500.0
    # dense inverse: O(max_items^2) memory, O(max_items^3) time; the product passes
    # RECOMMENDATIONS["EASE_MAX_ITEMS"] (recommendations/conf.py), chosen for ~1 minute on 2 CPU cores
    max_items: int = 10000
    use_weights: bool = False
    seed: int = 0


class EASE(Recommender):
    algorithm = "ease"
    config_cls = EASEConfig
    score_floor = OUTSIDE_SCORE  # the tail outside the cap scores below it

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
        g = (x.T @ x).toarray().astype(dtype, copy=False)
        g[np.diag_indices_from(g)] += cfg.l2
        inverse = torch.linalg.inv(torch.from_numpy(g))
        del g  # before the copy below: one n x n array fewer at the peak
        # torch returns LAPACK's column-major layout: C order for scipy's sparse @ dense (which
        # otherwise copies the whole matrix on every scoring batch)
        p = np.ascontiguousarray(inverse.numpy())
        del inverse
        p /= -np.diag(p).copy()[None, :]  # B = -P / diag(P), in place (one n x n array at a time)
        p[np.diag_indices_from(p)] = 0.0
        self._b = p.astype(np.float32, copy=False)
        # the tail outside the cap: below every covered item, most popular first
        pop = counts.astype(np.float64)
        share = pop / (pop.max() + 1.0) if len(pop) else pop
        self._outside = (OUTSIDE_SCORE - TAIL_SPREAD * (1.0 - share)).astype(np.float32)
        inputs.report_single_pass(n_active_items=len(active))

    def _set_histories(self, ds: Dataset) -> None:
        self._x = ds.csr(binary=not self.config.use_weights)

    def _forget_user_rows(self, rows: np.ndarray) -> None:
        self._x = clear_rows(self._x, rows)

    def _scores_from(self, x: sp.csr_matrix) -> np.ndarray:
        out = np.empty((x.shape[0], self.n_items), dtype=np.float32)
        out[:] = self._outside_scores()[None, :]
        out[:, self._active] = np.asarray(x[:, self._active] @ self._b, dtype=np.float32)
        return out

    def _outside_scores(self) -> np.ndarray:
        outside = getattr(self, "_outside", None)
        if outside is None:  # a model saved before the popularity tie-break: a flat tail
            outside = self._outside = np.full(self.n_items, OUTSIDE_SCORE, np.float32)
        return outside

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._scores_from(self._x[np.atleast_1d(np.asarray(user_idx, dtype=np.int64))])

    def score_histories(self, histories: list[list[int]]) -> np.ndarray:
        return self._scores_from(_histories_csr(histories, self.n_items))

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {
            "b": self._b, "active": self._active, "outside": self._outside_scores(),
            "x_data": self._x.data, "x_indices": self._x.indices, "x_indptr": self._x.indptr,
        }

    def _set_arrays(self, a: dict[str, np.ndarray]) -> None:
        self._b, self._active = np.ascontiguousarray(a["b"]), a["active"]
        self._outside = a.get("outside")
        self._x = sp.csr_matrix((a["x_data"], a["x_indices"], a["x_indptr"]), shape=(self.n_users, self.n_items))

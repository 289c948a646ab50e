"""Item-to-item kNN on co-occurrence ("customers who bought X also bought Y").

Similarity is shrunk cosine on the user x item matrix,
``sim(i, j) = <x_i, x_j> / (|x_i|^alpha |x_j|^(1-alpha) + shrink)``, keeping only the
``k_neighbors`` most similar items per item. A customer's score for item j is the
sum of similarities from the items in their history. The similarity matrix is
built in column blocks so memory stays O(n_items * block) rather than O(n_items^2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..data import Dataset
from .base import FitInputs, Recommender, clear_rows


@dataclass
class ItemKNNConfig:
    k_neighbors: int = 100
    shrink: float = 10.0
    alpha: float = 0.5  # 0.5 = symmetric cosine
    use_weights: bool = False  # True: use kind weights in the history vector
    block_size: int = 1024
    seed: int = 0


def _history_matrix(ds: Dataset, use_weights: bool) -> sp.csr_matrix:
    return ds.csr(binary=not use_weights)


class ItemKNN(Recommender):
    algorithm = "itemknn"
    config_cls = ItemKNNConfig

    def _fit(self, train: Dataset, inputs: FitInputs) -> None:
        cfg = self.config
        x = train.csr(binary=True).tocsc()
        n = train.n_items
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        left = np.power(norms, 2 * cfg.alpha)
        right = np.power(norms, 2 * (1 - cfg.alpha))
        xt = x.T.tocsr()
        k = min(cfg.k_neighbors, max(n - 1, 1))
        rows, cols, vals = [], [], []
        for start in range(0, n, cfg.block_size):
            stop = min(start + cfg.block_size, n)
            block = (xt @ x[:, start:stop]).toarray()  # [n, b]: co-occurrence of all i with block j
            denom = left[:, None] * right[None, start:stop] + cfg.shrink + 1e-12
            sim = block / denom
            sim[np.arange(start, stop), np.arange(stop - start)] = 0.0  # no self-similarity
            top = np.argpartition(-sim, k - 1, axis=0)[:k]
            top_vals = np.take_along_axis(sim, top, axis=0)
            keep = top_vals > 0
            rows.append(top[keep])
            cols.append(np.broadcast_to(np.arange(start, stop), top.shape)[keep])
            vals.append(top_vals[keep])
        self._sim = sp.csr_matrix(
            (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n, n),
        )
        inputs.report_single_pass(nnz=int(self._sim.nnz))

    def _set_histories(self, ds: Dataset) -> None:
        self._x = _history_matrix(ds, self.config.use_weights)

    def _forget_user_rows(self, rows: np.ndarray) -> None:
        self._x = clear_rows(self._x, rows)

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        rows = self._x[np.atleast_1d(np.asarray(user_idx, dtype=np.int64))]
        return np.asarray((rows @ self._sim).toarray(), dtype=np.float32)

    def score_histories(self, histories: list[list[int]]) -> np.ndarray:
        return np.asarray((_histories_csr(histories, self.n_items) @ self._sim).toarray(), np.float32)

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {
            "sim_data": self._sim.data, "sim_indices": self._sim.indices, "sim_indptr": self._sim.indptr,
            "x_data": self._x.data, "x_indices": self._x.indices, "x_indptr": self._x.indptr,
        }

    def _set_arrays(self, a: dict[str, np.ndarray]) -> None:
        n = self.n_items
        self._sim = sp.csr_matrix((a["sim_data"], a["sim_indices"], a["sim_indptr"]), shape=(n, n))
        self._x = sp.csr_matrix((a["x_data"], a["x_indices"], a["x_indptr"]), shape=(self.n_users, n))


def _histories_csr(histories: list[list[int]], n_items: int) -> sp.csr_matrix:
    """Binary user x item matrix for ad-hoc histories."""
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.fromiter((i for h in histories for i in h), np.int64, len(rows))
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(histories), n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m

"""The one contract every recommender implements.

Why: Django services, the trainer, metrics and benchmarks only ever talk to
:class:`Recommender`; an algorithm is one file with a config dataclass and the
few methods below (after implicit's ``RecommenderBase``).

- ``fit(train, item_embeddings=, valid=, progress=)`` learns parameters; an algorithm implements
  ``_fit(train, inputs)``, where :class:`FitInputs` carries the three optional inputs.
- ``score(user_idx)`` returns raw float32 scores [n, n_items] (higher = better) for
  users of the index space, from the *histories* the model holds (the training
  data by default; :meth:`set_histories` swaps in fresher histories without
  retraining, e.g. train+valid before scoring the test split).
- ``score_histories(histories)`` scores customers unknown at fit time.
- ``recommend`` is implemented once here: score, mask seen items, top-k.
- ``cold_stage`` (optional, :mod:`..cold_slots`): a few places of the served list for cold items,
  chosen on validation; ``served_score`` / ``served_score_histories`` are the scores with it
  applied, and every path that serves or measures a list (metrics, batch scoring, export, the
  session endpoint) uses them, so the list measured is the list served.
- ``save``/``load`` write ``config.json`` + ``arrays.npz`` (``allow_pickle=False``)
  and, for torch models, a ``state_dict`` read with ``weights_only=True``. Never pickle.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..data import Dataset
from .calibration import apply_platt

if TYPE_CHECKING:
    from ..cold_slots import ColdSlots

FORMAT_VERSION = 1
Progress = Callable[[dict], None]


@dataclass(frozen=True)
class FitInputs:
    """What :meth:`Recommender.fit` hands every algorithm besides the training data.

    One object rather than the same keyword list in every ``_fit``: an algorithm reads what it
    uses and ignores the rest.
    """

    item_embeddings: np.ndarray | None = None  # [n_items, dim] text embeddings, row = item index
    valid: np.ndarray | None = None  # [(user, item)] held out, for models that early-stop
    # per user index: the time of their validation basket (nan: none), for models that measure
    # themselves as of that moment (Split.valid_now)
    valid_now: np.ndarray | None = None
    progress: Progress | None = None

    def report(self, record: dict) -> None:
        """Pass one progress record on, if anyone listens."""
        if self.progress:
            self.progress(record)

    def report_single_pass(self, **extra: Any) -> None:
        """The one record of a model fitted in a single pass (no epochs, loss or validation)."""
        self.report({"epoch": 1, "loss": None, "valid_ndcg": None, **extra})


class Recommender(ABC):
    """Base class: subclasses set ``algorithm`` and ``config_cls`` and implement
    ``_fit``, ``score`` and the array (de)serialisation hooks."""

    algorithm: ClassVar[str] = ""
    config_cls: ClassVar[type] = object
    # Scores at or below this are placeholders for items the model does not cover (they rank below
    # every covered item); calibration leaves them out. None: every score is a real one.
    score_floor: ClassVar[float | None] = None
    cold_stage: ColdSlots | None = None  # set per instance by set_cold_stage

    def __init__(self, config: Any = None, **params: Any) -> None:
        if config is None:
            known = {f.name for f in fields(self.config_cls)}
            unknown = set(params) - known
            if unknown:
                raise ValueError(
                    f"Unknown parameter(s) for {self.algorithm}: {sorted(unknown)}; "
                    f"expected some of {sorted(known)}."
                )
            config = self.config_cls(**params)
        self.config = config
        self.n_items = 0
        self.n_users = 0
        self.item_keys: list[str] = []
        self.user_keys: list[str] = []
        self.calibration: tuple[float, float] = (1.0, 0.0)
        self.fit_info: dict[str, Any] = {}
        self._seen = sp.csr_matrix((0, 0), dtype=np.float32)
        self._item_pop = np.zeros(0, dtype=np.float32)
        self.cold_stage: ColdSlots | None = None
        self._stage_hist: list[np.ndarray] = []

    # ----------------------------------------------------------------- fitting
    def fit(
        self,
        train: Dataset,
        *,
        item_embeddings: np.ndarray | None = None,
        valid: np.ndarray | None = None,
        valid_now: np.ndarray | None = None,
        progress: Progress | None = None,
    ) -> Recommender:
        """Learn from ``train``. ``valid`` [(user, item)] is used by models that early-stop or choose
        a setting on it; ``valid_now`` (per user index, the validation basket's time) by those that
        score as of a moment (``trending``)."""
        if item_embeddings is not None and len(item_embeddings) != train.n_items:
            raise ValueError(
                f"item_embeddings has {len(item_embeddings)} rows but the dataset has "
                f"{train.n_items} items."
            )
        self.n_items, self.n_users = train.n_items, train.n_users
        self.item_keys, self.user_keys = list(train.item_keys), list(train.user_keys)
        self._item_pop = train.item_counts().astype(np.float32)
        self.set_histories(train)
        self._fit(train, FitInputs(item_embeddings=item_embeddings, valid=valid, valid_now=valid_now,
                                   progress=progress))
        return self

    @abstractmethod
    def _fit(self, train: Dataset, inputs: FitInputs) -> None:
        """Learn the parameters; ``fit`` has already set the index spaces and histories."""

    def set_histories(self, ds: Dataset) -> None:
        """Use ``ds`` (same index spaces) as the customers' histories for ``score``
        and for masking seen items, without changing learned parameters."""
        if ds.n_items != self.n_items or ds.n_users != self.n_users:
            raise ValueError("set_histories needs a dataset with the model's index spaces.")
        self._seen = ds.csr(binary=True)
        self._set_histories(ds)
        if self.cold_stage is not None:
            self._set_stage_histories(ds)

    def set_cold_stage(self, stage: ColdSlots | None, ds: Dataset | None = None) -> None:
        """Serve with ``stage`` (None: without); ``ds``: the histories it reads (same as the
        model's), and whose counts decide which items are cold."""
        self.cold_stage = stage
        if stage is not None and ds is not None:
            self._set_stage_histories(ds)

    def _set_stage_histories(self, ds: Dataset) -> None:
        stage = self.cold_stage
        assert stage is not None
        self.cold_stage = stage.with_counts(ds.item_counts())
        self._stage_hist = [recent_distinct(h, stage.config.n_recent) for h in ds.sequences()]

    def _set_histories(self, ds: Dataset) -> None:
        """Hook for models whose scores depend on histories."""
        return None

    def set_now(self, now: np.ndarray | None) -> None:
        """Score each customer as of ``now[user]`` (seconds; nan: as of the end of the histories), for
        an evaluation that must not count what happened after the held-out basket. Models whose scores
        do not depend on the moment ignore it; None: back to the end of the histories."""
        return None

    # ----------------------------------------------------------------- scoring
    @abstractmethod
    def score(self, user_idx: np.ndarray) -> np.ndarray:
        """Raw scores float32 [len(user_idx), n_items]; higher = better."""

    def score_histories(self, histories: list[list[int]]) -> np.ndarray:
        """Scores for customers not in the training index (lists of item indices,
        oldest first). Default: popularity; models that can use histories override."""
        return np.tile(self._item_pop, (len(histories), 1)).astype(np.float32)

    def score_order_histories(self, histories: list[list[int]], orders: list[list]) -> np.ndarray:
        """:meth:`score_histories` of histories whose entries carry their order key (``orders``,
        parallel lists: the order id, or the timestamp without one). Only a model trained on orders
        reads them (the basket-aware sequential model); the default ignores them."""
        return self.score_histories(histories)

    def served_score(self, user_idx: np.ndarray) -> np.ndarray:
        """``score`` with the cold stage applied (the scores the served list is made of)."""
        scores = self.score(user_idx)
        if self.cold_stage is None or not self.cold_stage.active:
            return scores
        user_idx = np.atleast_1d(np.asarray(user_idx, dtype=np.int64))
        return self.cold_stage.apply(scores, [self._stage_hist[u] for u in user_idx], self._seen[user_idx])

    def served_score_histories(self, histories: list[list[int]], orders: list[list] | None = None) -> np.ndarray:
        """``score_histories`` with the cold stage applied (a history's items are never served);
        ``orders``: each entry's order key (see :meth:`score_order_histories`)."""
        return self.served_score_histories_and_picks(histories, orders)[0]

    def served_score_histories_and_picks(
        self, histories: list[list[int]], orders: list[list] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`served_score_histories` and the cold items the stage put in each row's slots
        (int64 [n, slots], -1 = none; None without an active stage), chosen once for both."""
        scores = self.score_histories(histories) if orders is None else self.score_order_histories(histories, orders)
        if self.cold_stage is None or not self.cold_stage.active:
            return scores, None
        return self.cold_stage.choose_and_apply(scores, [np.asarray(h, np.int64) for h in histories])

    def probability(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probability for raw scores, ``sigmoid(a*s + b)`` (default a=1, b=0)."""
        a, b = self.calibration
        return apply_platt(scores, a, b)

    def seen_mask_rows(self, user_idx: np.ndarray) -> sp.csr_matrix:
        return self._seen[np.asarray(user_idx, dtype=np.int64)]

    def recommend(
        self, user_idx: np.ndarray, k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per user: (items int64 [n, k], raw scores float32 [n, k])."""
        user_idx = np.atleast_1d(np.asarray(user_idx, dtype=np.int64))
        scores = self.served_score(user_idx).astype(np.float32, copy=True)
        if exclude_seen:
            seen = self.seen_mask_rows(user_idx).tocoo()
            scores[seen.row, seen.col] = -np.inf
        return top_k(scores, k)

    # ---------------------------------------------------------------- erasure
    def forget_users(self, keys: list[str] | set[str]) -> int:
        """Erase customers from the per-user state (right to erasure), without refitting.

        Their key becomes ``""`` and their rows of the seen matrix and of the stored histories are
        emptied; index spaces keep their shape, so everyone else scores exactly as before. Learned
        parameters are aggregates over all customers and stay until the next fit (which no longer
        sees the erased customers' events). Returns how many rows were erased.
        """
        wanted = set(keys) - {""}
        rows = np.array([n for n, key in enumerate(self.user_keys) if key in wanted], dtype=np.int64)
        if len(rows) == 0:
            return 0
        for row in rows:
            self.user_keys[row] = ""
        self._seen = clear_rows(self._seen, rows)
        self._forget_user_rows(rows)
        for row in rows:
            if row < len(self._stage_hist):
                self._stage_hist[row] = np.zeros(0, np.int64)
        return len(rows)

    def _forget_user_rows(self, rows: np.ndarray) -> None:
        """Hook: empty the rows ``rows`` of any per-user state besides the seen matrix."""
        return None

    # ------------------------------------------------------------ persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Hook: restore what ``_get_arrays`` returned."""
        return None

    def _save_extra(self, path: Path) -> None:
        """Hook: write files besides config.json and arrays.npz (e.g. a state_dict)."""
        return None

    def _load_extra(self, path: Path) -> None:
        """Hook: read what ``_save_extra`` wrote."""
        return None

    def save(self, path: str | Path) -> Path:
        """Write the model into directory ``path`` (created if needed)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        config = {
            "algorithm": self.algorithm,
            "format_version": FORMAT_VERSION,
            "params": asdict(self.config),
            "n_items": self.n_items,
            "n_users": self.n_users,
            "item_keys": self.item_keys,
            "calibration": list(self.calibration),
            "fit_info": _jsonable(self.fit_info),
            "cold_slots": None if self.cold_stage is None else self.cold_stage.to_json(),
        }
        (path / "config.json").write_text(json.dumps(config, indent=1))
        arrays = {
            "user_keys": np.array(self.user_keys, dtype=str),
            "item_pop": self._item_pop,
            "seen_indptr": self._seen.indptr,
            "seen_indices": self._seen.indices,
        }
        arrays.update({f"m_{k}": v for k, v in self._get_arrays().items()})
        if self.cold_stage is not None:
            arrays.update(self.cold_stage.to_arrays())
            lengths = np.fromiter((len(h) for h in self._stage_hist), np.int64, len(self._stage_hist))
            arrays["cold_slots_indptr"] = np.concatenate([[0], np.cumsum(lengths)])
            arrays["cold_slots_indices"] = (np.concatenate(self._stage_hist).astype(np.int64)
                                            if lengths.sum() else np.zeros(0, np.int64))
        np.savez(path / "arrays.npz", **arrays)
        self._save_extra(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        path = Path(path)
        config = json.loads((path / "config.json").read_text())
        if config["algorithm"] != cls.algorithm:
            raise ValueError(f"{path} holds a {config['algorithm']!r} model, not {cls.algorithm!r}.")
        known = {f.name for f in fields(cls.config_cls)}  # older artefacts may carry retired params
        model = cls(cls.config_cls(**{k: v for k, v in config["params"].items() if k in known}))
        model.n_items, model.n_users = int(config["n_items"]), int(config["n_users"])
        model.item_keys = list(config["item_keys"])
        model.calibration = tuple(config["calibration"])  # type: ignore[assignment]
        model.fit_info = config.get("fit_info", {})
        with np.load(path / "arrays.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        model.user_keys = [str(k) for k in arrays["user_keys"]]
        model._item_pop = arrays["item_pop"]
        indices = arrays["seen_indices"]
        model._seen = sp.csr_matrix(
            (np.ones(len(indices), np.float32), indices, arrays["seen_indptr"]),
            shape=(model.n_users, model.n_items),
        )
        model._set_arrays({k[2:]: v for k, v in arrays.items() if k.startswith("m_")})
        if config.get("cold_slots") is not None:
            from ..cold_slots import ColdSlots

            model.cold_stage = ColdSlots.from_saved(config["cold_slots"], arrays)
            ptr, idx = arrays["cold_slots_indptr"], arrays["cold_slots_indices"]
            model._stage_hist = [idx[ptr[r] : ptr[r + 1]] for r in range(len(ptr) - 1)]
        model._load_extra(path)
        return model


def recent_distinct(history: np.ndarray, n: int) -> np.ndarray:
    """The latest ``n`` distinct items of a history (oldest first in, oldest first out): all the
    text profile reads, so storing only these keeps saved and fitted stages identical."""
    h = np.asarray(history, np.int64)[::-1]
    _, first = np.unique(h, return_index=True)
    return h[np.sort(first)][:n][::-1].copy()


def clear_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """``matrix`` (CSR) with the given rows emptied (same shape)."""
    if matrix.shape[0] == 0:
        return matrix
    keep = np.ones(matrix.shape[0], dtype=matrix.dtype)
    keep[rows] = 0
    out = (sp.diags(keep) @ matrix).tocsr()
    out.eliminate_zeros()
    return out


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a dense score matrix via argpartition, sorted descending."""
    n, m = scores.shape
    k = max(0, min(int(k), m))
    if k == 0:
        return np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    items = np.take_along_axis(part, order, axis=1).astype(np.int64)
    return items, np.take_along_axis(part_scores, order, axis=1).astype(np.float32)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj

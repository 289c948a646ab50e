"""Exporting the active version's top-K per customer, straight from the model.

Two lists, like the stored ones: ``discover`` scores the version's model; an export can exclude
(default) or include everything a customer has already interacted with. ``buy_again`` ranks each
customer's own purchases with the version's buy-again ranker (by when they will need them again).
Scores come from each customer's current history, like scoring does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import torch

from crm.models import Customer, Item

from ..engine.batch_scoring import top_k_ties_by_index
from ..engine.models import top_k
from ..models import ModelVersion, Recommendation
from ..selectors import model_version_active
from .scoring import (
    LoadedBuyAgain,
    _available_mask,
    loaded_buy_again,
    loaded_version,
    model_input,
    scoreable_customers,
    shard_history,
)

NO_ACTIVE = "There is no active model version; run `manage.py train --activate` first."
NO_BUY_AGAIN = (
    "The active model version v{pk} has no buy-again ranker (it was trained before buy-again lists "
    "existed); run `manage.py train --activate` to train one."
)
CHUNK = 2000

Row = tuple[str, int, str, float]


def recommendations_export_rows(
    *, k: int = 10, exclude_seen: bool = True, list_name: str = Recommendation.List.DISCOVER
) -> Iterator[Row]:
    """(customer external id, rank, item sku, score) for every customer, best first.

    ``exclude_seen`` applies to ``discover`` only: the buy-again list is made of seen items.
    """
    version = model_version_active()
    if version is None:
        raise ValueError(NO_ACTIVE)
    if list_name == Recommendation.List.BUY_AGAIN:
        loaded = loaded_buy_again(version)
        if loaded is None:
            raise ValueError(NO_BUY_AGAIN.format(pk=version.pk))
        return _buy_again_rows(loaded, k=k)
    if list_name != Recommendation.List.DISCOVER:
        raise ValueError(f"Unknown list {list_name!r}; choose discover or buy_again.")
    return _discover_rows(version, k=k, exclude_seen=exclude_seen)


def _skus(item_ids: np.ndarray) -> list[str]:
    skus = dict(Item.objects.values_list("id", "sku"))
    return [skus.get(int(i), str(i)) for i in item_ids]


def _customer_chunks() -> Iterator[tuple[list[int], dict[int, str]]]:
    ids = list(scoreable_customers().order_by("id").values_list("id", flat=True))
    external = dict(Customer.objects.values_list("id", "external_id"))
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK], external


def _discover_rows(version: ModelVersion, *, k: int, exclude_seen: bool) -> Iterator[Row]:
    loaded = loaded_version(version)
    model, index = loaded.model, loaded.item_index
    item_skus = _skus(loaded.item_ids)
    available = _available_mask(index, model.n_items)
    for chunk, external in _customer_chunks():
        history = shard_history(chunk[0], chunk[-1])
        for b in range(0, len(chunk), 256):
            batch = chunk[b : b + 256]
            seqs, orders = model_input(history, batch, index)
            scores = model.served_score_histories(seqs, orders).astype(np.float32, copy=True)
            scores[:, ~available] = -np.inf
            if exclude_seen:  # everything ever touched, not only the model's (truncated) input
                for row, cid in enumerate(batch):
                    scores[row, [index[i] for i in history.interacted.get(cid, ()) if i in index]] = -np.inf
            items, values = _top_k_ties_by_index(scores, min(k, model.n_items))
            for row, cid in enumerate(batch):
                for rank, (idx, value) in enumerate(zip(items[row], values[row]), start=1):
                    if np.isfinite(value):
                        yield external[cid], rank, item_skus[idx], round(float(value), 6)


def _top_k_ties_by_index(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k with equal scores ordered by item index, as batch scoring stores them: the exported
    discover list is the stored one even for models that tie (popularity)."""
    values, items = top_k_ties_by_index(torch.from_numpy(np.ascontiguousarray(scores)), k)
    return items.numpy(), values.numpy()


def _buy_again_rows(loaded: LoadedBuyAgain, *, k: int) -> Iterator[Row]:
    ranker, index = loaded.ranker, loaded.item_index
    item_skus = _skus(loaded.item_ids)
    available = _available_mask(index, ranker.n_items)
    now = time.time()
    for chunk, external in _customer_chunks():
        history = shard_history(chunk[0], chunk[-1])
        buyers = [cid for cid in chunk if history.purchases.get(cid)]
        for b in range(0, len(buyers), 256):
            batch = buyers[b : b + 256]
            timed = [[(index[i], ts) for i, ts in history.purchases[cid] if i in index] for cid in batch]
            scores = np.asarray(ranker.score_timed_histories(timed, now), dtype=np.float32).copy()
            scores[:, ~available] = -np.inf
            items, values = top_k(scores, min(k, ranker.n_items))
            for row, cid in enumerate(batch):
                for rank, (idx, value) in enumerate(zip(items[row], values[row]), start=1):
                    if np.isfinite(value):
                        yield external[cid], rank, item_skus[idx], round(float(value), 6)

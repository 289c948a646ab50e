"""Exporting the active version's top-K per customer, straight from the model.

Unlike the stored lists (which always drop purchased items), an export can include or exclude
everything a customer has already interacted with, so it serves both "what next" and "buy again"
uses. Scores come from each customer's current history, like scoring does.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from crm.models import Customer, Item

from ..engine.models import top_k
from ..selectors import model_version_active
from .scoring import _histories, loaded_version, scoreable_customers

NO_ACTIVE = "There is no active model version; run `manage.py train --activate` first."
CHUNK = 2000


def recommendations_export_rows(*, k: int = 10, exclude_seen: bool = True) -> Iterator[tuple[str, int, str, float]]:
    """(customer external id, rank, item sku, score) for every customer, best first."""
    version = model_version_active()
    if version is None:
        raise ValueError(NO_ACTIVE)
    loaded = loaded_version(version)
    model, index = loaded.model, loaded.item_index
    skus = dict(Item.objects.values_list("id", "sku"))
    item_skus = [skus.get(int(i), str(i)) for i in loaded.item_ids]
    available = np.zeros(model.n_items, dtype=bool)
    for item_id in Item.objects.available().values_list("id", flat=True).iterator(chunk_size=20_000):
        if item_id in index:
            available[index[item_id]] = True
    ids = list(scoreable_customers().order_by("id").values_list("id", flat=True))
    external = dict(Customer.objects.values_list("id", "external_id"))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        histories = _histories(chunk[0], chunk[-1])
        for b in range(0, len(chunk), 256):
            batch = chunk[b : b + 256]
            seqs = [[index[i] for i, _ in histories.get(cid, []) if i in index] for cid in batch]
            scores = model.score_histories(seqs).astype(np.float32, copy=True)
            scores[:, ~available] = -np.inf
            if exclude_seen:
                for row, seq in enumerate(seqs):
                    scores[row, seq] = -np.inf
            items, values = top_k(scores, min(k, model.n_items))
            for row, cid in enumerate(batch):
                for rank, (idx, value) in enumerate(zip(items[row], values[row]), start=1):
                    if np.isfinite(value):
                        yield external[cid], rank, item_skus[idx], round(float(value), 6)

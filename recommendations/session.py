"""Real-time recommendations for a browsing session: a visitor's recent items -> top-k, in the request.

For "you might also like" on product pages and for visitors with no stored list (anonymous, or
customers who arrived after the nightly scoring). The active version's model scores the recent
items as a history (the sequential model's ``score_histories`` through the batch scorer: one
forward pass; EASE / item-kNN / popularity the same way), the items the visitor already has are
excluded, and the catalogue filters (category, in stock) become a boolean mask, so a request costs one small
matrix product and a few small queries (SKUs -> ids, unavailable items, ids -> items).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.db.models import Q

from crm.models import Item

from .engine.batch_scoring import PackedHistories, score_batches, scorer_for
from .selectors import RecommendedItem, model_version_active
from .services.scoring import loaded_version


class ModelUnavailable(RuntimeError):
    """The active version's artefact cannot be loaded by this process (the API answers 503)."""


@dataclass(frozen=True)
class SessionResult:
    model_version: int | None
    results: list[RecommendedItem]
    ignored: list[str]  # SKUs that are not in the catalogue the model knows


def _allowed(loaded, *, category: str | None, in_stock: bool) -> np.ndarray:
    """Boolean mask over the model's items. Read fresh per request (stock changes by the minute);
    both queries return the few exceptions (unavailable items) or the one category's ids."""
    allowed = np.ones(len(loaded.item_ids), bool)
    if in_stock:
        unavailable = Item.objects.filter(Q(active=False) | Q(in_stock=False)).values_list("id", flat=True)
        allowed[[loaded.item_index[i] for i in unavailable if i in loaded.item_index]] = False
    if category:
        in_category = np.zeros_like(allowed)
        ids = Item.objects.filter(category__iexact=category).values_list("id", flat=True)
        in_category[[loaded.item_index[i] for i in ids if i in loaded.item_index]] = True
        allowed &= in_category
    return allowed


def session_recommendations(
    *, skus: Sequence[str], k: int = 10, category: str | None = None, in_stock: bool = True
) -> SessionResult:
    """Top-``k`` items for a visitor whose recent items (oldest first) are ``skus``."""
    version = model_version_active()
    if version is None:
        return SessionResult(None, [], list(skus))
    try:
        loaded = loaded_version(version)
    except (OSError, ValueError, KeyError) as exc:  # artefact missing or unreadable on this host
        raise ModelUnavailable(f"The active model version v{version.pk} cannot be loaded here.") from exc
    id_by_sku = dict(Item.objects.filter(sku__in=set(skus)).values_list("sku", "id"))
    history, ignored = [], []
    for sku in skus:
        index = loaded.item_index.get(id_by_sku.get(sku, -1))
        if index is None:
            ignored.append(sku)
        else:
            history.append(index)
    allowed = _allowed(loaded, category=category, in_stock=in_stock)
    packed = PackedHistories.from_lists([history])
    # exact even on large catalogues: one row is ~1 ms at 200 k items, and an ANN index would be
    # built inside the first request of each web process
    scored = next(score_batches(scorer_for(loaded.model), packed, k, exclude=packed, allowed=allowed))
    finite = np.isfinite(scored.scores[0])
    top, scores = scored.items[0][finite], scored.scores[0][finite]
    items = Item.objects.in_bulk([int(loaded.item_ids[i]) for i in top])
    probabilities = loaded.model.probability(scores) if len(scores) else scores
    reason = "based on what you are looking at" if history else "popular right now"
    results = [
        RecommendedItem(item=items[int(loaded.item_ids[i])], rank=rank, score=float(s), probability=float(p),
                        reason=reason, source="session")
        for rank, (i, s, p) in enumerate(zip(top, scores, probabilities), start=1)
        if int(loaded.item_ids[i]) in items
    ]
    return SessionResult(version.pk, results, ignored)

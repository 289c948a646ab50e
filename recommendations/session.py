"""Real-time recommendations for a browsing session: a visitor's recent items -> top-k, in the request.

For "you might also like" on product pages and for visitors with no stored list (anonymous, or
customers who arrived after the nightly scoring). The active version's model scores the recent
items as a history (the sequential model's ``score_histories`` through the batch scorer: one
forward pass; EASE / item-kNN / popularity the same way), the items the visitor already has are
excluded, and the catalogue filters (category, in stock) become a boolean mask.

A request costs one small matrix product and three small queries: the active version (id and
artefact path only), one catalogue query that returns at once the SKUs' ids, the unavailable items
and the category's items, and the result items (only the columns the API shows). The model, its
item table and its scorer are built once per process and version (``_serving``); stock and
category are read fresh per request, since they change by the minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from django.db.models import Q, Value

from crm.models import Item

from .conf import recommendations_settings
from .engine.batch_scoring import PackedHistories, Scorer, score_batches, scorer_for
from .models import ModelVersion
from .selectors import RecommendedItem
from .services.scoring import LoadedVersion, loaded_version

# What RecommendedItemSerializer shows of an item (the rest of the row is never read here).
SHOWN_ITEM_FIELDS = ("id", "sku", "title", "category", "price", "currency", "url", "image_url")


class ModelUnavailable(RuntimeError):
    """The active version's artefact cannot be loaded by this process (the API answers 503)."""


@dataclass(frozen=True)
class SessionResult:
    model_version: int | None
    results: list[RecommendedItem]
    ignored: list[str]  # SKUs that are not in the catalogue the model knows


@dataclass(frozen=True)
class _Serving:
    loaded: LoadedVersion
    scorer: Scorer


@lru_cache(maxsize=4)
def _serving(version_pk: int, artifact_path: str) -> _Serving:
    """The version's model and scorer, built once per process (the sequential scorer holds the
    item table). Request scoring is a ``[1, n_items]`` product: more intra-op threads than
    ``SESSION_TORCH_THREADS`` only make concurrent web workers fight over the cores."""
    threads = recommendations_settings().SESSION_TORCH_THREADS
    if threads:
        torch.set_num_threads(threads)
    loaded = loaded_version(ModelVersion(pk=version_pk, artifact_path=artifact_path))
    return _Serving(loaded, scorer_for(loaded.model))


def _catalogue(loaded: LoadedVersion, *, skus: Sequence[str], category: str | None, in_stock: bool):
    """One round trip: {sku: item id} of the visitor's items, and the boolean mask of allowed model
    items (the unavailable ones and, with a category, every item of it come back as exceptions).

    A ``UNION ALL`` of one query per question, so each keeps its own plan (the SKUs by their unique
    index; a single ``OR`` of all conditions would test every row for the SKUs, twice as slow)."""
    columns = ("id", "sku", "active", "in_stock", "in_category")
    parts = [Item.objects.filter(sku__in=set(skus)).annotate(in_category=Value(False)).order_by()]
    if in_stock:
        parts.append(Item.objects.filter(Q(active=False) | Q(in_stock=False)).annotate(in_category=Value(False))
                     .order_by())
    if category:
        parts.append(Item.objects.filter(category__iexact=category).annotate(in_category=Value(True)).order_by())
    rows = parts[0].values_list(*columns)
    if len(parts) > 1:
        rows = rows.union(*(part.values_list(*columns) for part in parts[1:]), all=True)
    sku_set = set(skus)
    id_by_sku: dict[str, int] = {}
    allowed = np.ones(len(loaded.item_ids), bool)
    in_category_mask = np.zeros_like(allowed) if category else None
    index = loaded.item_index
    for item_id, sku, active, stocked, matches in rows:
        if sku in sku_set:
            id_by_sku[sku] = item_id
        position = index.get(item_id)
        if position is None:
            continue
        if in_stock and not (active and stocked):
            allowed[position] = False
        if in_category_mask is not None and matches:
            in_category_mask[position] = True
    if in_category_mask is not None:
        allowed &= in_category_mask
    return id_by_sku, allowed


def session_recommendations(
    *, skus: Sequence[str], k: int = 10, category: str | None = None, in_stock: bool = True
) -> SessionResult:
    """Top-``k`` items for a visitor whose recent items (oldest first) are ``skus``."""
    active = ModelVersion.objects.filter(is_active=True).values_list("pk", "artifact_path").first()
    if active is None:
        return SessionResult(None, [], list(skus))
    try:
        serving = _serving(*active)
    except (OSError, ValueError, KeyError) as exc:  # artefact missing or unreadable on this host
        raise ModelUnavailable(f"The active model version v{active[0]} cannot be loaded here.") from exc
    loaded = serving.loaded
    id_by_sku, allowed = _catalogue(loaded, skus=skus, category=category, in_stock=in_stock)
    history, ignored = [], []
    for sku in skus:
        index = loaded.item_index.get(id_by_sku.get(sku, -1))
        if index is None:
            ignored.append(sku)
        else:
            history.append(index)
    packed = PackedHistories.from_lists([history])
    # exact (scorer_for's default) even on large catalogues: one row is ~1 ms at 200 k items
    scored = next(score_batches(serving.scorer, packed, k, exclude=packed, allowed=allowed))
    finite = np.isfinite(scored.scores[0])
    top, scores = scored.items[0][finite], scored.scores[0][finite]
    items = Item.objects.only(*SHOWN_ITEM_FIELDS).order_by().in_bulk([int(loaded.item_ids[i]) for i in top])
    probabilities = loaded.model.probability(scores) if len(scores) else scores
    reason = "based on what you are looking at" if history else "popular right now"
    results = [
        RecommendedItem(item=items[int(loaded.item_ids[i])], rank=rank, score=float(s), probability=float(p),
                        reason=reason, source="session")
        for rank, (i, s, p) in enumerate(zip(top, scores, probabilities), start=1)
        if int(loaded.item_ids[i]) in items
    ]
    return SessionResult(active[0], results, ignored)

"""Item text embeddings, stored in ItemEmbedding and recomputed only when an item's text changes."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from django.db import transaction

from crm.models import Item

from ..conf import recommendations_settings
from ..engine.text import TextEncoder, item_text, text_key
from ..models import ItemEmbedding

logger = logging.getLogger(__name__)

_ENCODERS: dict[tuple[str, str], TextEncoder] = {}


def text_encoder() -> TextEncoder:
    """The configured encoder, loaded once per process (a Celery worker keeps it between tasks)."""
    conf = recommendations_settings()
    key = (conf.TEXT_MODEL or "", conf.DEVICE)
    if key not in _ENCODERS:
        _ENCODERS[key] = TextEncoder(conf.TEXT_MODEL or None, device=conf.DEVICE, batch_size=conf.TEXT_BATCH_SIZE)
    return _ENCODERS[key]


def item_embedding_text(item: Item) -> str:
    return item_text(item.title, item.description, item.category, item.tags or [])


def item_embeddings_refresh(
    *, encoder: TextEncoder | None = None, progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    """Embed every item whose text (or the encoder) changed since its stored embedding.

    Returns counts: ``items``, ``embedded`` (recomputed now) and ``unchanged``.
    """
    encoder = encoder or text_encoder()
    name = encoder.name
    stored = dict(ItemEmbedding.objects.filter(model_name=name).values_list("item_id", "text_hash"))
    stale: list[tuple[int, str, str]] = []
    n_items = 0
    for item in Item.objects.only("id", "title", "description", "category", "tags").iterator(chunk_size=2000):
        n_items += 1
        text = item_embedding_text(item)
        digest = text_key(name, text)
        if stored.get(item.id) != digest:
            stale.append((item.id, text, digest))
    for start in range(0, len(stale), 4096):
        chunk = stale[start : start + 4096]
        # identical texts (variants of one product) are encoded once
        texts = list(dict.fromkeys(t for _, t, _ in chunk))
        position = {t: n for n, t in enumerate(texts)}
        unique = encoder.encode(texts)
        vectors = unique[[position[t] for _, t, _ in chunk]]
        rows = [
            ItemEmbedding(
                item_id=i, model_name=name, text_hash=h, dim=vectors.shape[1], vector=ItemEmbedding.encode_vector(v)
            )
            for (i, _, h), v in zip(chunk, vectors)
        ]
        with transaction.atomic():
            ItemEmbedding.objects.filter(item_id__in=[r.item_id for r in rows]).delete()
            ItemEmbedding.objects.bulk_create(rows, batch_size=500)
        if progress is not None:
            progress(start + len(chunk), len(stale))
    logger.info("embedded %d of %d items with %s", len(stale), n_items, name)
    return {"items": n_items, "embedded": len(stale), "unchanged": n_items - len(stale)}


def item_embedding_matrix(*, item_ids: list[int], encoder: TextEncoder | None = None) -> np.ndarray:
    """float32 [len(item_ids), dim] aligned with ``item_ids``; zero rows for items not embedded."""
    encoder = encoder or text_encoder()
    matrix = np.zeros((len(item_ids), encoder.dim), dtype=np.float32)
    position = {item_id: n for n, item_id in enumerate(item_ids)}
    rows = ItemEmbedding.objects.filter(model_name=encoder.name).values_list("item_id", "vector")
    for item_id, vector in rows.iterator(chunk_size=2000):
        if item_id in position:
            matrix[position[item_id]] = ItemEmbedding.decode_vector(vector)
    return matrix

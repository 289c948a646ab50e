"""Scoring: every customer's top-K from a model version, with reasons, written before activation.

Scoring reads each customer's current history from the CRM, so a re-score picks up events that
arrived after training. Customers are split into contiguous id ranges (shards); with a broker the
shards run as a Celery chord on the ``gpu`` queue and the chord's callback activates the version,
so the active pointer flips only after every shard has written its rows.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from django.conf import settings
from django.db import transaction

from crm.models import Customer, Feedback, Interaction, Item

from ..conf import recommendations_settings
from ..engine.models import Recommender, load_recommender, top_k
from ..models import ModelVersion, Recommendation
from .embedding import item_embedding_matrix
from .registry import model_version_activate

logger = logging.getLogger(__name__)

KIND_VERBS = {
    "purchase": "bought",
    "rating": "rated",
    "add_to_cart": "added to your cart",
    "wishlist": "saved",
    "click": "clicked on",
    "view": "viewed",
}
KIND_STRENGTH = {"purchase": 5, "rating": 4, "add_to_cart": 3, "wishlist": 2, "click": 1, "view": 0}
SIMILAR_ENOUGH = 0.55
HISTORY_LENGTH = 200


@dataclass
class LoadedVersion:
    model: Recommender
    item_ids: np.ndarray  # CRM item id of each model item index
    item_index: dict[int, int]
    embeddings: np.ndarray  # L2-normalised text embeddings, [n_items, dim] (zeros when missing)


@lru_cache(maxsize=4)
def _load(version_pk: int, artifact_path: str) -> LoadedVersion:
    """A version's model, loaded once per process (workers keep it between shards)."""
    model = load_recommender(artifact_path)
    item_ids = np.array([int(k) for k in model.item_keys], dtype=np.int64)
    embeddings = item_embedding_matrix(item_ids=item_ids.tolist())
    return LoadedVersion(model, item_ids, {int(i): n for n, i in enumerate(item_ids)}, embeddings)


def loaded_version(version: ModelVersion) -> LoadedVersion:
    return _load(version.pk, version.artifact_path)


def scoreable_customers():
    """Customers who get a stored, personalised list: everyone who has not withdrawn consent."""
    return Customer.objects.filter(unsubscribed_at__isnull=True)


def customer_shards(*, shards: int | None = None) -> list[tuple[int, int]]:
    """Contiguous, inclusive customer id ranges of roughly equal size."""
    ids = list(scoreable_customers().order_by("id").values_list("id", flat=True))
    if not ids:
        return []
    if shards is None:
        shards = max(1, math.ceil(len(ids) / recommendations_settings().SCORE_SHARD_SIZE))
    size = math.ceil(len(ids) / max(1, shards))
    return [(ids[i], ids[min(i + size, len(ids)) - 1]) for i in range(0, len(ids), size)]


def _histories(lo: int, hi: int) -> dict[int, list[tuple[int, str]]]:
    """(item_id, kind) per customer, oldest first, the latest HISTORY_LENGTH kept."""
    rows = (
        Interaction.objects.filter(customer_id__gte=lo, customer_id__lte=hi, excluded_from_training=False)
        .order_by("customer_id", "occurred_at", "id")
        .values_list("customer_id", "item_id", "kind")
    )
    histories: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for customer_id, item_id, kind in rows.iterator(chunk_size=20_000):
        histories[customer_id].append((item_id, kind))
    return {c: h[-HISTORY_LENGTH:] for c, h in histories.items()}


def _reasons(
    items: np.ndarray,
    history: list[tuple[int, str]],
    loaded: LoadedVersion,
    titles: dict[int, str],
    country: str,
    popular_here: set[int],
) -> list[str]:
    """One short, true reason per recommended item (model item indices), from one matrix product.

    New items (no training events) are "new, similar to X"; items whose text is close to something
    the customer interacted with are "because you bought/viewed X"; the rest are popular.
    """
    strongest: dict[int, str] = {}
    for hist_item, kind in history[-30:]:
        if KIND_STRENGTH.get(kind, 0) >= KIND_STRENGTH.get(strongest.get(hist_item, "view"), 0):
            strongest[hist_item] = kind
    known = [i for i in strongest if i in loaded.item_index]
    if known:
        sims = loaded.embeddings[items] @ loaded.embeddings[[loaded.item_index[i] for i in known]].T
        best = sims.argmax(axis=1)
    reasons = []
    for row, idx in enumerate(items):
        item_id = int(loaded.item_ids[idx])
        if item_id in strongest:
            reasons.append(f"you {KIND_VERBS.get(strongest[item_id], 'viewed')} it recently")
            continue
        if known:
            anchor, similarity = known[best[row]], sims[row, best[row]]
            title = titles.get(anchor, "something you viewed")
            if loaded.model._item_pop[idx] == 0:
                reasons.append(f"new, similar to {title}"[:300])
                continue
            if similarity >= SIMILAR_ENOUGH:
                reasons.append(f"because you {KIND_VERBS.get(strongest[anchor], 'viewed')} {title}"[:300])
                continue
        if item_id in popular_here:
            reasons.append(f"popular in {country}" if country else "popular right now")
        else:
            reasons.append("popular with customers like you")
    return reasons


def model_version_score_shard(*, version: ModelVersion, lo: int, hi: int) -> int:
    """Score customers with ids in [lo, hi] and store their top-K; idempotent per (version, shard)."""
    from ..selectors import popular_item_scores

    loaded = loaded_version(version)
    model, k = loaded.model, recommendations_settings().TOP_K
    customers = list(scoreable_customers().filter(id__range=(lo, hi)).order_by("id").values_list("id", "country"))
    histories = _histories(lo, hi)
    available = np.zeros(model.n_items, dtype=bool)
    for item_id in Item.objects.available().values_list("id", flat=True).iterator(chunk_size=20_000):
        if item_id in loaded.item_index:
            available[loaded.item_index[item_id]] = True
    excluded_kinds = set(recommendations_settings().EXCLUDE_SEEN_KINDS)
    rejected = defaultdict(set)
    negative = (Feedback.Kind.NOT_INTERESTED, Feedback.Kind.DISLIKE, Feedback.Kind.COMPLAINT)
    for customer_id, item_id in Feedback.objects.filter(
        customer_id__gte=lo, customer_id__lte=hi, kind__in=negative, item__isnull=False
    ).values_list("customer_id", "item_id"):
        rejected[customer_id].add(item_id)
    popular = {c: {i for i, _ in popular_item_scores(country=c, limit=100)} for c in {c for _, c in customers}}
    hist_items = {i for h in histories.values() for i, _ in h}
    titles = dict(Item.objects.filter(id__in=hist_items).values_list("id", "title")) if hist_items else {}

    rows: list[Recommendation] = []
    todo = [(cid, country) for cid, country in customers if cid in histories]
    for start in range(0, len(todo), 256):
        batch = todo[start : start + 256]
        index = loaded.item_index
        scores = model.score_histories(
            [[index[i] for i, _ in histories.get(cid, []) if i in index] for cid, _ in batch]
        )
        scores = scores.astype(np.float32, copy=True)
        scores[:, ~available] = -np.inf
        for row, (cid, _) in enumerate(batch):
            drop = rejected.get(cid, set()) | {i for i, kind in histories.get(cid, []) if kind in excluded_kinds}
            cols = [loaded.item_index[i] for i in drop if i in loaded.item_index]
            scores[row, cols] = -np.inf
        top_items, top_scores = top_k(scores, min(k, model.n_items))
        probabilities = model.probability(top_scores)
        for row, (cid, country) in enumerate(batch):
            finite = np.isfinite(top_scores[row])
            items, values, probs = top_items[row][finite], top_scores[row][finite], probabilities[row][finite]
            reasons = _reasons(items, histories.get(cid, []), loaded, titles, country, popular.get(country, set()))
            rows.extend(
                Recommendation(
                    model_version=version,
                    customer_id=cid,
                    rank=rank,
                    item_id=int(loaded.item_ids[idx]),
                    score=float(score),
                    probability=float(prob),
                    reason=reason,
                )
                for rank, (idx, score, prob, reason) in enumerate(zip(items, values, probs, reasons), start=1)
            )
    with transaction.atomic():
        Recommendation.objects.filter(model_version=version, customer_id__gte=lo, customer_id__lte=hi).delete()
        Recommendation.objects.bulk_create(rows, batch_size=5000)
    logger.info("v%s: scored customers %s..%s, %d rows", version.pk, lo, hi, len(rows))
    return len(rows)


def model_version_scored(*, version: ModelVersion, activate: bool) -> ModelVersion:
    """All shards are written: mark the version ready and, if asked, make it the active one."""
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.READY)
    version.refresh_from_db()
    if activate:
        version = model_version_activate(version=version)
    return version


def model_version_score(
    *,
    version: ModelVersion,
    activate: bool,
    shards: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ModelVersion | None:
    """Score every customer with ``version`` in shards, then (optionally) activate it.

    Eager mode scores the shards in turn and returns the activated version; with a broker the
    shards run in parallel as a chord and this returns None at once (the callback activates).
    """
    from ..tasks import model_version_score_shard_task, model_version_scored_task

    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.SCORING)
    ranges = customer_shards(shards=shards)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        for done, (lo, hi) in enumerate(ranges, start=1):
            model_version_score_shard(version=version, lo=lo, hi=hi)
            if progress is not None:
                progress(done, len(ranges))
        return model_version_scored(version=version, activate=activate)
    from celery import chord

    header = [model_version_score_shard_task.si(version.pk, lo, hi) for lo, hi in ranges]
    chord(header)(model_version_scored_task.si(version.pk, activate))
    return None


def model_version_rescore(
    *,
    version: ModelVersion | None = None,
    shards: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ModelVersion | None:
    """Score current histories with an existing model as a new version, then activate it.

    A new version row (same artefact) is scored in full before the pointer flips, so readers never
    see a half-rewritten list.
    """
    from ..selectors import model_version_active

    source = version or model_version_active()
    if source is None:
        raise ValueError("There is no active model version to score with; run `manage.py train` first.")
    clone = ModelVersion.objects.create(
        algorithm=source.algorithm,
        params=source.params,
        data_stats=source.data_stats,
        metrics=source.metrics,
        artifact_path=source.artifact_path,
        device=source.device,
        timings=source.timings,
        status=ModelVersion.Status.SCORING,
        notes=f"re-scored from v{source.pk}",
    )
    return model_version_score(version=clone, activate=True, shards=shards, progress=progress)

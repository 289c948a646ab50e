"""Read side of the recommendations app: what the API and campaigns ask for.

``recommendation_list_for_customer`` is the one entry point for "what should this customer see":
the active version's stored list, re-ranked by business rules and filters, topped up when the
stored list is missing or too short after filtering. A version stores two lists per customer:
``discover`` (never what they bought; topped up by the cold-start path: popular in the customer's
country, blended with text similarity to what they touched) and ``buy_again`` (only what they
bought; topped up from their purchase history, most often and most recently bought first).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TypeVar

import numpy as np
from django.db.models import Count, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from crm.models import Customer, Feedback, Interaction, Item
from crm.queries import in_values

from .conf import recommendations_settings
from .models import ItemEmbedding, ModelVersion, Recommendation
from .reasons import DAY, buy_again_reason

LIST_DISCOVER = Recommendation.List.DISCOVER.value
LIST_BUY_AGAIN = Recommendation.List.BUY_AGAIN.value
LISTS: tuple[str, ...] = tuple(Recommendation.List.values)
T = TypeVar("T")


@dataclass(frozen=True)
class RecommendedItem:
    item: Item
    rank: int
    score: float
    probability: float | None
    reason: str
    source: str  # "model", "cold_start" (discover top-up) or "history" (buy-again top-up)


@dataclass(frozen=True)
class ItemFilters:
    category: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None

    def q(self, prefix: str = "") -> Q:
        """The filters as one condition; on a relation with ``prefix="item__"`` (one joined query)."""
        condition = Q()
        if self.category:
            condition &= Q(**{f"{prefix}category__iexact": self.category})
        if self.min_price is not None:
            condition &= Q(**{f"{prefix}price__gte": self.min_price})
        if self.max_price is not None:
            condition &= Q(**{f"{prefix}price__lte": self.max_price})
        return condition

    def apply(self, items: QuerySet[Item]) -> QuerySet[Item]:
        return items.filter(self.q())


def model_version_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_active=True).first()


def model_version_active_id() -> int | None:
    """The serving version's id alone (the version row holds large JSON columns a read never needs)."""
    return ModelVersion.objects.filter(is_active=True).values_list("pk", flat=True).first()


def customer_with_active_version(*, external_id: str) -> tuple[Customer | None, int | None]:
    """The customer and the active version's id in one indexed query (the version as a scalar
    subquery on the partial unique index of the active version); (None, None) for no such customer."""
    active = ModelVersion.objects.filter(is_active=True).order_by().values("pk")[:1]
    customer = Customer.objects.filter(external_id=external_id).annotate(active_version_id=Subquery(active)).first()
    return customer, customer.active_version_id if customer is not None else None


_ACTIVE = object()  # default of ``model_version_id``: look the active version up


def customers_excluded_item_ids(
    *, customer_ids: Sequence[int], list_name: str = LIST_DISCOVER
) -> dict[int, set[int]]:
    """Items never to show each customer in ``list_name``: negative feedback, and in the discover
    list (per settings) what they already bought, which is exactly what the buy-again list is made of."""
    excluded: dict[int, set[int]] = defaultdict(set)
    rejected = Feedback.objects.filter(
        in_values("customer_id", customer_ids), kind__in=Feedback.NEGATIVE_KINDS, item__isnull=False
    )
    for customer_id, item_id in rejected.order_by().values_list("customer_id", "item_id"):
        excluded[customer_id].add(item_id)
    kinds = recommendations_settings().EXCLUDE_SEEN_KINDS
    if kinds and list_name == LIST_DISCOVER:
        seen = Interaction.objects.filter(in_values("customer_id", customer_ids), kind__in=kinds)
        for customer_id, item_id in seen.order_by().values_list("customer_id", "item_id"):
            excluded[customer_id].add(item_id)
    return excluded


def customer_excluded_item_ids(*, customer: Customer, list_name: str = LIST_DISCOVER) -> set[int]:
    """``customers_excluded_item_ids`` for one customer."""
    return customers_excluded_item_ids(customer_ids=[customer.pk], list_name=list_name)[customer.pk]


def diversify_by_category(
    candidates: list[T], *, limit: int, max_per_category: int | None, category_of: Callable[[T], str]
) -> tuple[list[T], bool]:
    """The first ``limit`` candidates with at most ``max_per_category`` of a category, then the
    overflow: diversity is a preference, not a reason to show fewer items than asked for.

    Also says whether the capped pass filled ``limit`` before the candidates ran out (callers that
    read only part of a list need to know whether it would have looked further).
    """
    if not max_per_category:
        return candidates[:limit], len(candidates) >= limit
    chosen, per_category, overflow = [], {}, []
    for candidate in candidates:
        category = category_of(candidate)
        if per_category.get(category, 0) < max_per_category:
            per_category[category] = per_category.get(category, 0) + 1
            chosen.append(candidate)
        else:
            overflow.append(candidate)
        if len(chosen) == limit:
            return (chosen + overflow)[:limit], True
    return (chosen + overflow)[:limit], False


def _allowed_items(filters: ItemFilters | None, exclude_item_ids: Iterable[int]) -> QuerySet[Item]:
    """Available items matching ``filters``, less ``exclude_item_ids``."""
    return (filters or ItemFilters()).apply(Item.objects.available()).exclude(id__in=set(exclude_item_ids))


def _ranked(scores: dict[int, float], reasons: dict[int, str], *, limit: int, source: str) -> list[RecommendedItem]:
    """The ``limit`` best-scored items (ties: lower id first), ranked from 1."""
    best = sorted(scores, key=lambda i: (-scores[i], i))[:limit]
    items = Item.objects.in_bulk(best)
    return [
        RecommendedItem(items[i], rank, scores[i], None, reasons[i], source)
        for rank, i in enumerate(best, start=1)
        if i in items
    ]


def _rerank(candidates: list[RecommendedItem]) -> list[RecommendedItem]:
    return [
        RecommendedItem(c.item, rank, c.score, c.probability, c.reason, c.source)
        for rank, c in enumerate(candidates, start=1)
    ]


def recommendation_list_for_customer(
    *,
    customer: Customer,
    limit: int = 10,
    filters: ItemFilters | None = None,
    exclude_item_ids: Iterable[int] = (),
    demote_item_ids: Iterable[int] = (),
    max_per_category: int | None = None,
    list_name: str = LIST_DISCOVER,
    model_version_id: int | None | object = _ACTIVE,
) -> list[RecommendedItem]:
    """The customer's recommendations from list ``list_name``, best first, honouring every business rule.

    Only active, in-stock items; never an item the customer rejected or (discover, per settings)
    already bought; ``filters`` narrow category and price; ``demote_item_ids`` (e.g. sent in recent
    campaigns) go to the back rather than away; ``max_per_category`` caps repeats per category.
    ``model_version_id``: the active version's id when the caller has it already (None: no active
    version); looked up otherwise.

    The stored list is one query (``stored_recommendations``); the exclusions are read as a set only
    when the list has to be topped up.
    """
    if list_name not in LISTS:
        raise ValueError(f"Unknown recommendation list {list_name!r}; choose one of {', '.join(LISTS)}.")
    filters = filters or ItemFilters()
    extra_excluded = set(exclude_item_ids)
    demoted = set(demote_item_ids)
    version_id = model_version_active_id() if model_version_id is _ACTIVE else model_version_id
    candidates: list[RecommendedItem] = []
    if version_id is not None:
        stored = stored_recommendations(
            customer=customer, model_version_id=version_id, list_name=list_name, filters=filters,
            exclude_item_ids=extra_excluded,
        )
        candidates = [RecommendedItem(r.item, r.rank, r.score, r.probability, r.reason, "model") for r in stored]
    wanted = limit * (3 if max_per_category else 1) + len(demoted)
    if len(candidates) < wanted:
        excluded = customer_excluded_item_ids(customer=customer, list_name=list_name) | extra_excluded
        seen = excluded | {c.item.id for c in candidates}
        top_up = cold_start_for_customer if list_name == LIST_DISCOVER else buy_again_from_history
        candidates += top_up(customer=customer, limit=wanted - len(candidates), filters=filters, exclude_item_ids=seen)
    candidates = [c for c in candidates if c.item.id not in demoted] + [c for c in candidates if c.item.id in demoted]
    chosen, _ = diversify_by_category(
        candidates, limit=limit, max_per_category=max_per_category, category_of=lambda c: c.item.category
    )
    return _rerank(chosen)


def stored_recommendations(
    *, customer: Customer, model_version_id: int, list_name: str, filters: ItemFilters,
    exclude_item_ids: Iterable[int] = (),
) -> QuerySet[Recommendation]:
    """The version's stored list for the customer, by rank, with every rule in one query: the item
    active, in stock and within ``filters``; not rejected (negative feedback) and, in the discover
    list, not already bought (``EXCLUDE_SEEN_KINDS``).

    On PostgreSQL the constant ``model_version_id`` prunes to the version's partition and the
    unique index ``(customer_id, list, rank, model_version_id)`` serves the read in rank order; the
    two exclusions are hashed subplans over the customer's own feedback and events (one index range
    each), the item a primary-key probe per row.
    """
    rejected = Feedback.objects.filter(
        customer_id=customer.pk, kind__in=Feedback.NEGATIVE_KINDS, item__isnull=False
    ).order_by().values("item_id")
    rows = (
        Recommendation.objects.filter(
            filters.q("item__"), model_version_id=model_version_id, list=list_name, customer_id=customer.pk,
            item__active=True, item__in_stock=True,
        )
        .exclude(item_id__in=rejected)
        .select_related("item")
        .order_by("rank")
    )
    kinds = recommendations_settings().EXCLUDE_SEEN_KINDS
    if kinds and list_name == LIST_DISCOVER:
        bought = Interaction.objects.filter(customer_id=customer.pk, kind__in=kinds).order_by().values("item_id")
        rows = rows.exclude(item_id__in=bought)
    exclude_item_ids = set(exclude_item_ids)
    if exclude_item_ids:
        rows = rows.exclude(item_id__in=exclude_item_ids)
    return rows


def buy_again_from_history(
    *,
    customer: Customer,
    limit: int = 10,
    filters: ItemFilters | None = None,
    exclude_item_ids: Iterable[int] = (),
) -> list[RecommendedItem]:
    """What the customer bought before, most often first, then most recently: the buy-again list
    when none is stored (a version without a buy-again ranker, or purchases since the last scoring).

    A purchase is counted once per moment (the lines of one order share a timestamp), so a basket
    holding the same product twice is one purchase of it. Customers who withdrew consent
    (unsubscribed) get no personal list, stored or live.
    """
    if not customer.pk or Customer.objects.filter(pk=customer.pk, unsubscribed_at__isnull=False).exists():
        return []
    allowed = _allowed_items(filters, exclude_item_ids)
    rows = (
        Interaction.objects.filter(customer=customer, kind=Interaction.Kind.PURCHASE, item__in=allowed)
        .order_by()
        .values_list("item_id", "occurred_at")
        .distinct()
    )
    moments: dict[int, list[float]] = {}
    for item_id, occurred_at in rows:
        moments.setdefault(item_id, []).append(occurred_at.timestamp())
    now = timezone.now().timestamp()
    best = sorted(moments, key=lambda i: (-len(moments[i]), -max(moments[i]), i))[:limit]
    items = Item.objects.in_bulk(best)
    result = []
    for rank, item_id in enumerate((i for i in best if i in items), start=1):
        times = sorted(moments[item_id])
        interval = (times[-1] - times[0]) / (len(times) - 1) / DAY if len(times) > 1 else None
        reason = buy_again_reason(
            times_bought=len(times), days_since_last=(now - times[-1]) / DAY, interval_days=interval
        )
        result.append(RecommendedItem(items[item_id], rank, float(len(times)), None, reason, "history"))
    return result


def popular_item_scores(*, country: str = "", days: int = 90, limit: int = 200, base: QuerySet[Item] | None = None):
    """(item_id, weighted count) of recent behaviour, purchases counting most; by country if given."""
    since = timezone.now() - timedelta(days=days)
    events = Interaction.objects.filter(occurred_at__gte=since, excluded_from_training=False)
    if country:
        events = events.filter(customer__country=country)
    if base is not None:
        events = events.filter(item__in=base)
    weighted = (
        events.values("item_id")
        .annotate(
            n=Count("id")
            + 4 * Count("id", filter=Q(kind=Interaction.Kind.PURCHASE))
            + 2 * Count("id", filter=Q(kind=Interaction.Kind.ADD_TO_CART)),
            q=Sum("quantity"),
        )
        .order_by("-n", "item_id")[:limit]
    )
    return [(row["item_id"], float(row["n"])) for row in weighted]


def _embedding_matrix(item_ids: list[int]) -> tuple[list[int], np.ndarray | None]:
    rows = list(ItemEmbedding.objects.filter(item_id__in=item_ids).values_list("item_id", "vector"))
    if not rows:
        return [], None
    ids = [r[0] for r in rows]
    return ids, np.vstack([ItemEmbedding.decode_vector(r[1]) for r in rows])


def cold_start_for_customer(
    *,
    customer: Customer,
    limit: int = 10,
    filters: ItemFilters | None = None,
    exclude_item_ids: Iterable[int] = (),
) -> list[RecommendedItem]:
    """Popularity in the customer's country, blended with text similarity to what they touched.

    Brand-new customers get popular items ("popular in DE"); a customer with a few events since the
    last scoring gets items whose text resembles those events ("similar to X").
    """
    base = _allowed_items(filters, exclude_item_ids)
    popular = popular_item_scores(country=customer.country, base=base, limit=max(limit * 5, 50))
    if len(popular) < limit:  # country too small: fall back to global popularity
        known = {i for i, _ in popular}
        popular += [p for p in popular_item_scores(base=base, limit=max(limit * 5, 50)) if p[0] not in known]
    scores: dict[int, float] = {}
    reasons: dict[int, str] = {}
    top = popular[0][1] if popular else 1.0
    where = f"popular in {customer.country}" if customer.country else "popular right now"
    for item_id, n in popular:
        scores[item_id] = 0.5 * n / top
        reasons[item_id] = where
    history = (
        list(customer.interactions.order_by("-occurred_at").values_list("item_id", "item__title")[:20])
        if customer.pk
        else []
    )
    if history:
        hist_ids, hist_vecs = _embedding_matrix([h[0] for h in history])
        cand_ids, cand_vecs = _embedding_matrix(list(base.values_list("id", flat=True)[:5000]))
        if hist_vecs is not None and cand_vecs is not None:
            sims = cand_vecs @ hist_vecs.T
            titles = dict(history)
            for row, item_id in enumerate(cand_ids):
                best = int(sims[row].argmax())
                similarity = float(sims[row, best])
                blended = scores.get(item_id, 0.0) + similarity
                if blended > scores.get(item_id, 0.0) and similarity > 0.3:
                    scores[item_id] = blended
                    reasons[item_id] = f"similar to {titles.get(hist_ids[best], 'what you viewed')}"
    if not scores:  # no behaviour anywhere yet: newest items
        for rank, item_id in enumerate(base.order_by("-created_at", "id").values_list("id", flat=True)[:limit]):
            scores[item_id] = 1.0 / (rank + 1)
            reasons[item_id] = "new in the shop"
    return _ranked(scores, reasons, limit=limit, source="cold_start")


def similar_items(*, item: Item, limit: int = 10) -> list[RecommendedItem]:
    """Items like this one: text-embedding cosine similarity blended with co-occurrence."""
    candidates = Item.objects.available().exclude(id=item.id)
    scores: dict[int, float] = {}
    reasons: dict[int, str] = {}
    ids, vecs = _embedding_matrix([item.id])
    if vecs is not None:
        cand_ids, cand_vecs = _embedding_matrix(list(candidates.values_list("id", flat=True)))
        if cand_vecs is not None:
            sims = cand_vecs @ vecs[0]
            for item_id, sim in zip(cand_ids, sims):
                scores[item_id] = float(sim)
                reasons[item_id] = "similar description"
    buyers = Interaction.objects.filter(item=item).values("customer_id")
    co = (
        Interaction.objects.filter(customer_id__in=buyers, item__in=candidates)
        .values("item_id")
        .annotate(n=Count("customer_id", distinct=True))
        .order_by("-n")[:200]
    )
    co = list(co)
    top = co[0]["n"] if co else 1
    for row in co:
        boost = 0.5 * row["n"] / top
        scores[row["item_id"]] = scores.get(row["item_id"], 0.0) + boost
        if boost >= 0.25:
            reasons[row["item_id"]] = "often bought together"
    return _ranked(scores, reasons, limit=limit, source="similar")


def training_events() -> Iterator[tuple[str, str, str, float, float | None, str]]:
    """Every interaction usable for training as ``(customer_id, item_id, kind, unix_ts, value, order_id)``.

    Keys are the CRM's primary keys as strings; ``order_id`` is the shop's order id or ``""`` when
    unknown (the engine then takes a customer's events with the same timestamp as one basket).
    Events flagged as automated (scanner clicks) are left out, and so are events of a re-created
    erased customer dated before their erasure (old data re-imported:
    ``crm.erasure.erased_customer_cutoffs``).
    """
    from crm.erasure import erased_customer_cutoffs

    events = Interaction.objects.filter(excluded_from_training=False)
    for customer_id, erased_at in erased_customer_cutoffs().items():
        events = events.exclude(customer_id=customer_id, occurred_at__lt=erased_at)
    rows = (
        events
        .order_by()
        .values_list("customer_id", "item_id", "kind", "occurred_at", "value", "order_id")
    )
    for customer_id, item_id, kind, occurred_at, value, order_id in rows.iterator(chunk_size=10_000):
        yield str(customer_id), str(item_id), kind, occurred_at.timestamp(), value, order_id


def catalogue_item_ids() -> list[int]:
    """Every item id, in a stable order: the item index space of a training run."""
    return list(Item.objects.order_by("id").values_list("id", flat=True))

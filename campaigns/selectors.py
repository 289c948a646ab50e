"""Read side of campaigns: bulk recommendation lists for a build, recipient queries, results.

``recommendation_snapshots_for_customers`` is the build's fast path. It applies exactly the rules
of ``recommendations.selectors.recommendation_list_for_customer`` (exclusions, filters, demotion,
diversity) to many customers with a handful of queries per chunk, and falls back to that function
itself for every customer whose answer the stored rows alone cannot decide (short lists that need
the cold-start path, or a diversity pass that would look past the rows read). Tests check that
both agree.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from crm.models import Customer, Item
from crm.queries import in_values
from crm.selectors import segment_evaluate
from recommendations.models import Recommendation
from recommendations.selectors import (
    LIST_DISCOVER,
    ItemFilters,
    RecommendedItem,
    customers_excluded_item_ids,
    diversify_by_category,
    model_version_active,
    recommendation_list_for_customer,
)

from .conf import campaigns_settings
from .models import Campaign, Recipient


@dataclass(frozen=True)
class CustomerRef:
    """What the bulk selector needs of a customer; cheaper than a model instance for 100,000 rows."""

    pk: int
    country: str = ""


@dataclass(frozen=True)
class _ItemRow:
    id: int
    sku: str
    title: str
    category: str
    price: Any
    currency: str
    url: str
    image_url: str


def item_snapshot(*, item: _ItemRow | Item, rank: int, score: float, probability: float | None, reason: str,
                  source: str) -> dict[str, Any]:
    """What a recipient keeps of one chosen item (JSON): enough to render and to audit later."""
    return {
        "item_id": item.id,
        "sku": item.sku,
        "title": item.title,
        "category": item.category,
        "price": None if item.price is None else str(item.price),
        "currency": item.currency,
        "url": item.url,
        "image_url": item.image_url,
        "score": round(float(score), 6),
        "probability": None if probability is None else round(float(probability), 6),
        "reason": reason,
        "rank": rank,
        "source": source,
    }


def snapshot_from_recommended(items: Sequence[RecommendedItem]) -> list[dict[str, Any]]:
    return [
        item_snapshot(item=r.item, rank=r.rank, score=r.score, probability=r.probability, reason=r.reason,
                      source=r.source)
        for r in items
    ]


def campaign_item_filters(*, campaign: Campaign) -> ItemFilters:
    return ItemFilters(
        category=campaign.filter_category or None,
        min_price=campaign.filter_min_price,
        max_price=campaign.filter_max_price,
    )


def campaign_audience(*, campaign: Campaign) -> QuerySet[Customer]:
    """The customers a campaign considers (before consent, caps and holdout): its segment, or everyone."""
    if campaign.audience_id is None:
        return Customer.objects.all()
    return segment_evaluate(segment=campaign.audience)


def allowed_items(*, filters: ItemFilters) -> dict[int, _ItemRow]:
    """Items a campaign may show: available (active, in stock) and matching the filters."""
    rows = filters.apply(Item.objects.available()).order_by().values_list(
        "id", "sku", "title", "category", "price", "currency", "url", "image_url"
    )
    return {row[0]: _ItemRow(*row) for row in rows}


def recommendation_snapshots_for_customers(
    *,
    customers: Sequence[Customer | CustomerRef],
    limit: int,
    filters: ItemFilters,
    demote_item_ids: dict[int, set[int]] | None = None,
    max_per_category: int | None = None,
    items: dict[int, _ItemRow] | None = None,
    list_name: str = LIST_DISCOVER,
) -> dict[int, list[dict[str, Any]]]:
    """Item snapshots per customer id from list ``list_name``, identical to
    ``recommendation_list_for_customer`` for each.

    ``customers`` need only ``pk`` and ``country`` loaded; ``items`` (from ``allowed_items``) can be
    passed in to reuse it across chunks.
    """
    demote_item_ids = demote_item_ids or {}
    items = allowed_items(filters=filters) if items is None else items
    version = model_version_active()
    ids = [c.pk for c in customers]
    excluded = customers_excluded_item_ids(customer_ids=ids, list_name=list_name)
    stored: dict[int, list[tuple]] = defaultdict(list)
    max_demoted = max((len(demote_item_ids.get(i, ())) for i in ids), default=0)
    read_depth = 2 * (limit * (3 if max_per_category else 1) + max_demoted) + 10
    if version is not None:
        rows = (
            Recommendation.objects.filter(
                in_values("customer_id", ids), model_version=version, list=list_name, rank__lte=read_depth
            )
            .order_by("customer_id", "rank")
            .values_list("customer_id", "item_id", "score", "probability", "reason")
        )
        for customer_id, item_id, score, probability, reason in rows:
            stored[customer_id].append((item_id, score, probability, reason))
    category = {item_id: row.category for item_id, row in items.items()}
    result: dict[int, list[dict[str, Any]]] = {}
    for customer in customers:
        demoted = demote_item_ids.get(customer.pk, set())
        chosen = None
        if version is not None:
            chosen = _choose_from_stored(
                stored.get(customer.pk, []), items=items, excluded=excluded.get(customer.pk, set()),
                demoted=demoted, limit=limit, max_per_category=max_per_category, category=category,
            )
        if chosen is None:  # the stored rows cannot decide: ask the per-customer selector itself
            if not isinstance(customer, Customer):  # the selector filters by pk and reads the country
                customer = Customer(pk=customer.pk, country=customer.country)
            result[customer.pk] = snapshot_from_recommended(
                recommendation_list_for_customer(
                    customer=customer, limit=limit, filters=filters, demote_item_ids=demoted,
                    max_per_category=max_per_category, list_name=list_name,
                )
            )
            continue
        result[customer.pk] = [
            item_snapshot(item=items[c[0]], rank=rank, score=c[1], probability=c[2], reason=c[3], source="model")
            for rank, c in enumerate(chosen, start=1)
        ]
    return result


def _choose_from_stored(rows, *, items, excluded, demoted, limit, max_per_category, category):
    candidates = [r for r in rows if r[0] in items and r[0] not in excluded]
    wanted = limit * (3 if max_per_category else 1) + len(demoted)
    if len(candidates) < wanted:  # the selector would top up with cold start
        return None
    front = [c for c in candidates if c[0] not in demoted]
    chosen, filled = diversify_by_category(
        front, limit=limit, max_per_category=max_per_category, category_of=lambda c: category[c[0]]
    )
    if not filled:
        # The pass would continue past the non-demoted rows read (into rows not read, or into the
        # demoted tail): only the per-customer selector, which sees everything, can decide.
        return None
    return chosen


def recently_sent_item_ids(*, customer_ids: Iterable[int], exclude_campaign_run: tuple[int, int] | None = None,
                           days: int | None = None) -> dict[int, set[int]]:
    """Items e-mailed to each customer within the rotation window (to be demoted)."""
    days = campaigns_settings().ROTATION_DAYS if days is None else days
    since = timezone.now() - timedelta(days=days)
    sent = Recipient.objects.filter(in_values("customer_id", customer_ids), state=Recipient.State.SENT,
                                    sent_at__gte=since)
    if exclude_campaign_run is not None:
        sent = sent.exclude(campaign_id=exclude_campaign_run[0], run=exclude_campaign_run[1])
    recent: dict[int, set[int]] = defaultdict(set)
    for customer_id, snapshot in sent.order_by().values_list("customer_id", "items"):
        recent[customer_id].update(entry["item_id"] for entry in snapshot or [])
    return recent


def recent_send_counts(*, customer_ids: Iterable[int], days: int) -> dict[int, int]:
    """Campaign e-mails sent to each customer in the last ``days`` days (for the frequency cap)."""
    from django.db.models import Count

    since = timezone.now() - timedelta(days=days)
    rows = (
        Recipient.objects.filter(in_values("customer_id", customer_ids), state=Recipient.State.SENT,
                                 sent_at__gte=since)
        .order_by()
        .values("customer_id")
        .annotate(n=Count("id"))
        .values_list("customer_id", "n")
    )
    return dict(rows)


def recipient_list(*, campaign: Campaign, run: int | None = None, state: str | None = None) -> QuerySet[Recipient]:
    recipients = Recipient.objects.filter(campaign=campaign).select_related("customer")
    if run is not None:
        recipients = recipients.filter(run=run)
    if state:
        recipients = recipients.filter(state=state)
    return recipients.order_by("run", "id")


def campaign_offers(*, campaign: Campaign, run: int | None = None) -> list[dict[str, Any]]:
    """One row per (customer, offered item) of a run: what an offer-list export contains.

    Holdout and skipped customers are left out: they get no offers.
    """
    run = run or campaign.current_run
    recipients = (
        Recipient.objects.filter(campaign=campaign, run=run, is_holdout=False)
        .exclude(state=Recipient.State.SKIPPED)
        .select_related("customer")
        .order_by("id")
    )
    rows = []
    for recipient in recipients.iterator(chunk_size=2000):
        for entry in recipient.items:
            rows.append({
                "customer_id": recipient.customer.external_id,
                "email": recipient.email,
                "rank": entry["rank"],
                "item_id": entry["sku"],
                "title": entry["title"],
                "price": entry["price"],
                "url": entry["url"],
                "score": entry["score"],
                "probability": entry["probability"],
                "reason": entry["reason"],
            })
    return rows

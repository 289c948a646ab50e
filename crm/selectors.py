"""Read-side queries of the CRM core."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from .models import Customer, Interaction, Item, Segment
from .segments import segment_queryset


@dataclass(frozen=True)
class SegmentPreview:
    count: int
    sample: list[Customer]


def segment_evaluate(*, segment: Segment) -> QuerySet[Customer]:
    """The customers a segment selects right now."""
    return segment_queryset(segment.rules)


def segment_preview(*, segment: Segment, sample_size: int = 10) -> SegmentPreview:
    customers = segment_evaluate(segment=segment)
    return SegmentPreview(count=customers.count(), sample=list(customers.order_by("-id")[:sample_size]))


def customer_recent_interactions(*, customer: Customer, limit: int = 50) -> QuerySet[Interaction]:
    return customer.interactions.select_related("item").order_by("-occurred_at", "-id")[:limit]


def customer_get(*, external_id: str) -> Customer | None:
    return Customer.objects.filter(external_id=external_id).first()


def item_get(*, sku: str) -> Item | None:
    return Item.objects.filter(sku=sku).first()

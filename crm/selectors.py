"""Read-side queries of the CRM core."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from .models import Customer, Interaction, Item, Segment
from .segments import segment_queryset
from .signals import customer_exporting


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


def customer_export(*, customer: Customer) -> dict[str, Any]:
    """Everything stored about a customer, for a data-subject access request.

    Covers everything ``customer_erase`` removes: the profile, events, feedback, consent history,
    and what downstream apps store (campaign messages and clicks, stored recommendations), which
    they add through the ``customer_exporting`` signal.
    """
    data: dict[str, Any] = {
        "customer": {
            "external_id": customer.external_id,
            "email": customer.email,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "country": customer.country,
            "attributes": customer.attributes,
            "email_opt_in": customer.email_opt_in,
            "unsubscribed_at": _iso(customer.unsubscribed_at),
            "consent_updated_at": _iso(customer.consent_updated_at),
            "created_at": customer.created_at.isoformat(),
            "updated_at": _iso(customer.updated_at),
        },
        "interactions": [
            {
                "item": i.item.sku,
                "kind": i.kind,
                "value": i.value,
                "quantity": i.quantity,
                "occurred_at": i.occurred_at.isoformat(),
                "source": i.source,
                "event_id": i.event_id,
                "order_id": i.order_id,
            }
            for i in customer.interactions.select_related("item").order_by("occurred_at", "id")
        ],
        "feedback": [
            {
                "item": f.item.sku if f.item else None,
                "kind": f.kind,
                "comment": f.comment,
                "status": f.status,
                "source": f.source,
                "campaign_recipient_id": f.campaign_recipient_id,
                "created_at": f.created_at.isoformat(),
            }
            for f in customer.feedback.select_related("item").order_by("created_at", "id")
        ],
        "consent_history": [
            {"action": e.action, "channel": e.channel, "source": e.source, "actor": e.actor,
             "created_at": e.created_at.isoformat()}
            for e in customer.consent_events.order_by("created_at", "id")
        ],
    }
    for _receiver, sections in customer_exporting.send(sender=Customer, customer=customer):
        data.update(sections or {})
    return data


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None

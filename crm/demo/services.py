"""Write the synthetic shop of ``generate.demo_dataset`` to the database, plus example segments."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction

from crm.models import Customer, Interaction, Item, Segment
from crm.segments import validate_rules

from .generate import demo_dataset

BATCH_SIZE = 5000

DEMO_SEGMENTS = {
    "Opted-in Germans": (
        "Customers in Germany we may e-mail.",
        {"match": "all", "conditions": [{"field": "country", "op": "in", "value": ["DE"]},
                                        {"field": "consent", "value": True}]},
    ),
    "Coffee lovers (90 days)": (
        "Anyone who looked at, carted or bought coffee in the last 90 days.",
        {"match": "all", "conditions": [{"field": "interacted_with_category", "value": "coffee", "days": 90}]},
    ),
    "Lapsed buyers": (
        "Bought before, but nothing in the last 60 days.",
        {"match": "all", "conditions": [{"field": "min_orders", "value": 1},
                                        {"field": "no_purchase_within_days", "value": 60}]},
    ),
    "Loyal: 3+ orders": (
        "Customers with at least three purchases.",
        {"match": "all", "conditions": [{"field": "min_orders", "value": 3}]},
    ),
}


@dataclass(frozen=True)
class DemoReport:
    customers: int
    items: int
    interactions: int
    segments: int
    elapsed_s: float


def demo_now() -> datetime:
    """The default anchor: today at midnight UTC, so runs on the same day produce identical rows."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def image_base() -> str:
    """Absolute URL of the shipped placeholder images (e-mails need absolute image links)."""
    static = settings.STATIC_URL
    if static.startswith("http"):
        return f"{static.rstrip('/')}/crm/demo/"
    return f"{settings.SITE_URL.rstrip('/')}/{static.strip('/')}/crm/demo/"


@transaction.atomic
def demo_data_create(
    *, customers: int = 500, items: int = 300, seed: int = 42, now: datetime | None = None
) -> DemoReport:
    """Generate and store the demo shop; event ids are ``demo:<seed>:<n>``, so a re-run adds nothing."""
    started = time.monotonic()
    dataset = demo_dataset(customers=customers, items=items, seed=seed, now=now or demo_now(),
                           image_base=image_base())
    Customer.objects.bulk_create(
        [Customer(**row) for row in dataset.customers], batch_size=BATCH_SIZE, ignore_conflicts=True
    )
    Item.objects.bulk_create([Item(**i.fields) for i in dataset.items], batch_size=BATCH_SIZE, ignore_conflicts=True)
    customer_ids = dict(Customer.objects.filter(external_id__in=[c["external_id"] for c in dataset.customers])
                        .values_list("external_id", "pk"))
    item_ids = dict(Item.objects.filter(sku__in=[i.sku for i in dataset.items]).values_list("sku", "pk"))
    events = [
        Interaction(
            customer_id=customer_ids[customer], item_id=item_ids[sku], kind=kind, occurred_at=occurred_at,
            quantity=quantity, value=value, source=Interaction.Source.WEB, event_id=event_id, created_at=occurred_at,
        )
        for customer, sku, kind, occurred_at, quantity, value, event_id in dataset.events
    ]
    Interaction.objects.bulk_create(events, batch_size=BATCH_SIZE, ignore_conflicts=True)
    for name, (description, rules) in DEMO_SEGMENTS.items():
        validate_rules(rules)
        Segment.objects.get_or_create(name=name, defaults={"description": description, "rules": rules})
    return DemoReport(
        customers=len(dataset.customers), items=len(dataset.items), interactions=len(events),
        segments=len(DEMO_SEGMENTS), elapsed_s=time.monotonic() - started,
    )

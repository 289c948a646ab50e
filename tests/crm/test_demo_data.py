"""manage.py demo_data: deterministic per seed and anchor, plausible, and learnable."""
import hashlib
import json
import re
from collections import Counter
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command

from crm.demo import DEMO_SEGMENTS, demo_data_create
from crm.demo.vocab import CATEGORIES
from crm.models import Customer, Interaction, Item, Segment
from crm.segments import validate_rules

NOW = datetime(2025, 1, 15, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def digest() -> str:
    """A stable hash of every generated row (ids and auto timestamps left out)."""
    rows = {
        "customers": list(Customer.objects.order_by("external_id").values_list(
            "external_id", "email", "first_name", "last_name", "country", "attributes", "email_opt_in",
            "consent_updated_at", "unsubscribed_at", "created_at",
        )),
        "items": list(Item.objects.order_by("sku").values_list(
            "sku", "title", "description", "category", "tags", "price", "url", "image_url", "active", "in_stock",
            "attributes", "created_at",
        )),
        "events": list(Interaction.objects.order_by("event_id").values_list(
            "event_id", "customer__external_id", "item__sku", "kind", "occurred_at", "quantity", "value", "source",
        )),
        "segments": list(Segment.objects.order_by("name").values_list("name", "rules")),
    }
    return hashlib.sha256(json.dumps(rows, default=str, sort_keys=True).encode()).hexdigest()


def wipe() -> None:
    for model in (Interaction, Segment, Customer, Item):
        model.objects.all().delete()


def test_same_seed_and_anchor_give_identical_rows():
    # given
    demo_data_create(customers=40, items=32, seed=7, now=NOW)
    first = digest()
    wipe()
    # when
    demo_data_create(customers=40, items=32, seed=7, now=NOW)
    # then
    assert digest() == first
    wipe()
    demo_data_create(customers=40, items=32, seed=8, now=NOW)
    assert digest() != first


def test_re_run_adds_nothing():
    # given
    report = demo_data_create(customers=30, items=24, seed=1, now=NOW)
    # when
    demo_data_create(customers=30, items=24, seed=1, now=NOW)
    # then
    assert (Customer.objects.count(), Item.objects.count(), Interaction.objects.count()) == (
        30, 24, report.interactions
    )


def test_the_shop_is_plausible():
    # when
    report = demo_data_create(customers=200, items=80, seed=42, now=NOW)
    # then
    assert report.interactions == Interaction.objects.count() > 2000
    assert 0.6 < Customer.objects.contactable().count() / 200 < 0.9
    assert Customer.objects.filter(unsubscribed_at__isnull=False, email_opt_in=False).exists()
    assert set(Customer.objects.values_list("country", flat=True)) <= {"DE", "FR", "GB", "US", "ES", "IT", "NL", "SE"}
    assert {"tier", "age_band"} <= set(Customer.objects.first().attributes)
    assert all(re.fullmatch(r"[a-z.]+\d+@example\.com", e) for e in Customer.objects.values_list("email", flat=True))
    assert set(Item.objects.values_list("category", flat=True)) == {c.name for c in CATEGORIES}
    item = Item.objects.get(sku="RUN-0001")
    assert item.url == "https://shop.example.com/p/RUN-0001"
    assert item.image_url.endswith("/static/crm/demo/run.svg#RUN-0001")  # shipped, no outside image service
    assert item.attributes["style"] in item.tags and item.price > 0
    assert set(Interaction.objects.values_list("kind", flat=True)) == {"view", "add_to_cart", "purchase"}
    assert all(e.startswith("demo:42:") for e in Interaction.objects.values_list("event_id", flat=True))
    assert Interaction.objects.filter(occurred_at__gt=NOW).count() == 0
    assert Interaction.objects.filter(item__active=False).count() == 0
    assert Interaction.objects.filter(kind="purchase", item__in_stock=False).count() == 0


def test_behaviour_follows_taste_and_sequence():
    """Customers mostly stay in a few categories, and accessories follow product purchases."""
    # when
    demo_data_create(customers=200, items=80, seed=3, now=NOW)
    # then
    top_share = []
    for customer in Customer.objects.all():
        categories = Counter(customer.interactions.values_list("item__category", flat=True))
        if sum(categories.values()) >= 10:
            top_share.append(sum(n for _c, n in categories.most_common(3)) / sum(categories.values()))
    assert sum(top_share) / len(top_share) > 0.85
    purchases = Interaction.objects.filter(kind="purchase").order_by("customer_id", "occurred_at")
    follow_ups = same_category = 0
    previous = None
    for event in purchases.select_related("item"):
        if previous and previous.customer_id == event.customer_id and "accessory" not in previous.item.tags:
            follow_ups += 1
            same_category += event.item.category == previous.item.category
        previous = event
    assert follow_ups and same_category / follow_ups > 0.5


def test_example_segments_are_valid():
    demo_data_create(customers=20, items=16, seed=1, now=NOW)
    assert set(Segment.objects.values_list("name", flat=True)) == set(DEMO_SEGMENTS)
    for segment in Segment.objects.all():
        validate_rules(segment.rules)


def test_command_with_if_empty():
    # given
    out = StringIO()
    call_command("demo_data", "--customers", "10", "--items", "8", "--seed", "5", "--now", "2025-01-15", stdout=out)
    assert "Demo shop: 10 customers, 8 items" in out.getvalue()
    # when
    out = StringIO()
    call_command("demo_data", "--if-empty", "--customers", "20", stdout=out)
    # then
    assert "already exist" in out.getvalue()
    assert Customer.objects.count() == 10


def test_titles_are_unique_and_purchases_come_as_orders():
    # when
    demo_data_create(customers=150, items=120, seed=7, now=NOW)
    # then: unique titles, so a reason "because you viewed X" is never about X itself
    titles = list(Item.objects.values_list("title", flat=True))
    assert len(titles) == len(set(titles))
    # orders: several lines share one timestamp, listed in product-code order
    lines = Counter(Interaction.objects.filter(kind="purchase").values_list("customer_id", "occurred_at"))
    assert sum(1 for n in lines.values() if n > 1) > 10
    for (customer_id, at), n in lines.items():
        if n > 1:
            skus = list(Interaction.objects.filter(kind="purchase", customer_id=customer_id, occurred_at=at)
                        .order_by("event_id").values_list("item__sku", flat=True))
            assert skus == sorted(skus)
    # replenishment: some consumable is bought three times or more by the same customer
    repeats = Counter(Interaction.objects.filter(kind="purchase", item__category__in=["coffee", "skincare"])
                      .values_list("customer_id", "item_id"))
    assert max(repeats.values()) >= 3

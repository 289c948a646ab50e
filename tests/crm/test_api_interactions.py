"""Bulk event ingest: idempotent on event_id, unknown references, limits, validation; the list."""
import pytest
from django.test import override_settings

from crm.models import Customer, Interaction, Item
from tests.conftest import assert_error
from tests.factories import CustomerFactory, InteractionFactory, ItemFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/interactions/bulk"


def _events(n, customer="c1", item="s1", start=0):
    return [{"event_id": f"e{i}", "customer": customer, "item": item, "kind": "view",
             "occurred_at": "2024-05-01T10:00:00Z"} for i in range(start, start + n)]


@pytest.fixture
def catalogue(db):
    return CustomerFactory(external_id="c1"), ItemFactory(sku="s1")


def test_ingest_then_replay_creates_nothing(writer, catalogue):
    # when
    first = writer.post(URL, {"events": _events(50)}, format="json")
    replay = writer.post(URL, {"events": _events(50)}, format="json")
    # then
    assert first.json() == {"received": 50, "created": 50, "duplicates": 0, "customers_created": 0,
                            "items_created": 0}
    assert replay.json()["created"] == 0 and replay.json()["duplicates"] == 50
    assert Interaction.objects.count() == 50
    stored = Interaction.objects.get(event_id="e0")
    assert stored.source == "api" and stored.quantity == 1 and stored.occurred_at.year == 2024


def test_partial_replay_and_repeats_inside_a_batch(writer, catalogue):
    writer.post(URL, {"events": _events(10)}, format="json")
    body = writer.post(URL, {"events": _events(10, start=5) + _events(2, start=100) * 2}, format="json").json()
    assert body == {"received": 14, "created": 7, "duplicates": 7, "customers_created": 0, "items_created": 0}
    assert Interaction.objects.count() == 17


def test_unknown_references_rejected_by_default_listing_them(writer, catalogue):
    events = _events(2) + [{"event_id": "x", "customer": "ghost", "item": "nothing", "kind": "click"}]
    body = assert_error(writer.post(URL, {"events": events}, format="json"), 400, "unknown_references")
    assert body["fields"] == {"unknown_customers": ["ghost"], "unknown_items": ["nothing"]}
    assert not Interaction.objects.exists()


def test_unknown_create_makes_bare_customers_and_items(writer):
    body = writer.post(f"{URL}?unknown=create", {"events": _events(3, customer="new", item="sku-new")},
                       format="json").json()
    assert body["created"] == 3 and body["customers_created"] == 1 and body["items_created"] == 1
    assert Customer.objects.get().external_id == "new" and Item.objects.get().title == "sku-new"
    assert_error(writer.post(f"{URL}?unknown=maybe", {"events": []}, format="json"), 400)


def test_more_than_ten_thousand_events_are_refused(writer, catalogue):
    body = assert_error(writer.post(URL, {"events": _events(10_001)}, format="json"), 400, "batch_too_large")
    assert body["detail"] == "At most 10000 events per request; got 10001."
    assert not Interaction.objects.exists()


def test_ten_thousand_events_in_one_request(writer, catalogue):
    assert writer.post(URL, {"events": _events(10_000)}, format="json").json()["created"] == 10_000


@pytest.mark.parametrize("bad, field", [
    ({"kind": "stare"}, "kind"),
    ({"occurred_at": "yesterday"}, "occurred_at"),
    ({"quantity": 0}, "quantity"),
    ({"quantity": True}, "quantity"),
    ({"value": "1"}, "value"),
    ({"event_id": ""}, "event_id"),
    ({"event_id": None}, "event_id"),
    ({"customer": 5}, "customer"),
    ({"item": "a\u0000b"}, "item"),
    ({"source": "fax"}, "source"),
])
def test_invalid_events_are_reported_by_position(writer, catalogue, bad, field):
    events = _events(2)
    events[1].update(bad)
    body = assert_error(writer.post(URL, {"events": events}, format="json"), 400, "invalid")
    assert f"events[1].{field}" in body["fields"]
    assert not Interaction.objects.exists()


def test_malformed_bodies(writer):
    assert_error(writer.post(URL, {"events": "x"}, format="json"), 400)
    assert_error(writer.post(URL, {"events": [1]}, format="json"), 400)
    assert_error(writer.post(URL, "{not json", content_type="application/json"), 400, "parse_error")


@override_settings(API_PAGE_SIZE=3)
def test_list_filters_and_pages(reader):
    customer, item = CustomerFactory(external_id="c1"), ItemFactory(sku="s1")
    for _ in range(5):
        InteractionFactory(customer=customer, item=item, kind="purchase")
    InteractionFactory(kind="view")
    page = reader.get("/api/v1/interactions?customer=c1&kind=purchase").json()
    assert len(page["results"]) == 3 and page["results"][0]["item"] == "s1"
    assert len(reader.get(page["next"]).json()["results"]) == 2
    assert_error(reader.get("/api/v1/interactions?kind=stare"), 400)
    assert_error(reader.post("/api/v1/interactions", {}, format="json"), 403)


def test_order_ids_are_stored_listed_and_filterable(writer, catalogue):
    ItemFactory(sku="s2")
    events = [
        {"event_id": "o1", "customer": "c1", "item": "s1", "kind": "purchase", "order_id": "ORD-7"},
        {"event_id": "o2", "customer": "c1", "item": "s2", "kind": "purchase", "order_id": "ORD-7"},
        {"event_id": "o3", "customer": "c1", "item": "s1", "kind": "view", "order_id": None},
        {"event_id": "o4", "customer": "c1", "item": "s1", "kind": "view"},
    ]
    assert writer.post(URL, {"events": events}, format="json").json()["created"] == 4
    assert dict(Interaction.objects.values_list("event_id", "order_id")) == {
        "o1": "ORD-7", "o2": "ORD-7", "o3": "", "o4": "",
    }
    listed = writer.get("/api/v1/interactions?order_id=ORD-7").json()["results"]
    assert sorted((r["event_id"], r["order_id"]) for r in listed) == [("o1", "ORD-7"), ("o2", "ORD-7")]


@pytest.mark.parametrize("order_id", ["x" * 101, 42, ["ORD-1"], {"id": 1}, "ORD\x00", "ORD\n1"])
def test_a_bad_order_id_is_a_400_naming_the_event(writer, catalogue, order_id):
    events = _events(1) + [{"event_id": "bad", "customer": "c1", "item": "s1", "kind": "purchase",
                            "order_id": order_id}]
    body = assert_error(writer.post(URL, {"events": events}, format="json"), 400, "invalid")
    assert list(body["fields"]) == ["events[1].order_id"]
    assert not Interaction.objects.exists()

"""``POST /api/v1/interactions/bulk`` and ``interaction_ingest_many``: idempotent on event_id under
retries and repeats, all-or-nothing on unknown keys, bad rows named. On PostgreSQL the batch is one
statement (``crm.services._INGEST_ONE_STATEMENT``); run this file with DATABASE_URL set to cover it."""
import json
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from crm import services
from crm.models import Interaction
from crm.signals import interactions_recorded
from tests.factories import CustomerFactory, ItemFactory

URL = "/api/v1/interactions/bulk"


@pytest.fixture
def writer(db):
    _, raw_key = services.api_key_create(name="ingest tests", scopes=["read", "write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def shop(db):
    return [CustomerFactory(external_id=f"c{i}") for i in range(3)], [ItemFactory(sku=f"s{i}") for i in range(3)]


def _event(n: int, customer: str = "c0", item: str = "s0", kind: str = "view", **extra) -> dict:
    return {"event_id": f"e{n}", "customer": customer, "item": item, "kind": kind,
            "occurred_at": f"2024-05-01T10:00:{n % 60:02d}Z", **extra}


def _post(client, events, query: str = ""):
    # json.dumps escapes lone surrogates ("\\ud800") as a real client would; the test renderer cannot
    return client.post(URL + query, json.dumps({"events": events}), content_type="application/json")


@pytest.mark.django_db
def test_a_retried_batch_stores_nothing_twice(writer, shop):
    # given
    batch = [_event(n, customer=f"c{n % 3}", item=f"s{n % 2}", kind="purchase" if n % 4 == 0 else "view")
             for n in range(20)]
    first = _post(writer, batch).json()
    # when the client retries the same batch, twice
    second = _post(writer, batch).json()
    third = _post(writer, batch[5:] + [_event(99)]).json()
    # then
    assert (first["created"], first["duplicates"]) == (20, 0)
    assert (second["created"], second["duplicates"]) == (0, 20)
    assert (third["created"], third["duplicates"]) == (1, 15)
    assert Interaction.objects.count() == 21
    stored = Interaction.objects.get(event_id="e4")
    assert (stored.customer.external_id, stored.item.sku, stored.kind) == ("c1", "s0", "purchase")


@pytest.mark.django_db
def test_a_repeated_event_id_within_one_batch_stores_the_first(writer, shop):
    body = _post(writer, [_event(1, kind="view"), _event(2), _event(1, kind="purchase", customer="c2")]).json()
    assert body == {"received": 3, "created": 2, "duplicates": 1, "customers_created": 0, "items_created": 0}
    first = Interaction.objects.get(event_id="e1")
    assert (first.kind, first.customer.external_id) == ("view", "c0")


@pytest.mark.django_db
def test_every_field_is_stored_as_sent(writer, shop):
    _post(writer, [_event(7, customer="c2", item="s1", kind="rating", value=4.5, quantity=3, source="import",
                          order_id="o-1")])
    row = Interaction.objects.get(event_id="e7")
    assert (row.customer.external_id, row.item.sku, row.kind, row.value, row.quantity, row.source, row.order_id) == (
        "c2", "s1", "rating", 4.5, 3, "import", "o-1")
    assert row.occurred_at.isoformat() == "2024-05-01T10:00:07+00:00"
    assert not row.excluded_from_training


@pytest.mark.django_db
def test_unknown_keys_reject_the_whole_batch_naming_them_in_order(writer, shop):
    events = [_event(1), _event(2, customer="zz"), _event(3, item="nope"), _event(4, customer="aa"),
              _event(5, customer="zz")]
    response = _post(writer, events)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "unknown_references"
    assert body["fields"]["unknown_customers"] == ["zz", "aa"]
    assert body["fields"]["unknown_items"] == ["nope"]
    assert Interaction.objects.count() == 0


@pytest.mark.django_db
def test_a_stored_event_replayed_with_a_changed_key_is_a_duplicate_not_an_error(writer, shop):
    _post(writer, [_event(1)])
    body = _post(writer, [_event(1, customer="someone-new"), _event(2)]).json()
    assert (body["created"], body["duplicates"]) == (1, 1)


@pytest.mark.django_db
@pytest.mark.parametrize("row, field", [
    ({"kind": "teleport"}, "events[2].kind"),
    ({"occurred_at": "yesterday"}, "events[2].occurred_at"),
    ({"event_id": "a\x00b"}, "events[2].event_id"),
    ({"customer": "x\ud800"}, "events[2].customer"),
    ({"item": "a/b"}, "events[2].item"),
    ({"quantity": 0}, "events[2].quantity"),
    ({"value": "high"}, "events[2].value"),
])
def test_a_bad_row_is_a_400_naming_it_and_nothing_is_stored(writer, shop, row, field):
    events = [_event(0), _event(1), {**_event(2), **row}, _event(3)]
    response = _post(writer, events)
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert Interaction.objects.count() == 0


@pytest.mark.django_db
def test_create_unknown_still_creates_bare_rows(writer, shop):
    body = _post(writer, [_event(1, customer="new-c", item="new-s"), _event(2)], "?unknown=create").json()
    assert body == {"received": 2, "created": 2, "duplicates": 0, "customers_created": 1, "items_created": 1}


@pytest.mark.django_db
def test_customers_with_new_events_are_announced_by_kind(shop, django_capture_on_commit_callbacks):
    customers, _ = shop
    seen = []

    def receiver(sender, customer_ids_by_kind, **kwargs):
        seen.append(customer_ids_by_kind)

    interactions_recorded.connect(receiver, dispatch_uid="test-bulk-ingest")
    try:
        events = [_event(1, customer="c1", kind="purchase"), _event(2, customer="c0", kind="view"),
                  _event(3, customer="c1", kind="view")]
        from django.utils.dateparse import parse_datetime

        clean = [{**e, "occurred_at": parse_datetime(e["occurred_at"])} for e in events]
        with django_capture_on_commit_callbacks(execute=True):
            services.interaction_ingest_many(events=clean)
        with django_capture_on_commit_callbacks(execute=True):
            services.interaction_ingest_many(events=clean)  # all duplicates: nothing to announce
    finally:
        interactions_recorded.disconnect(dispatch_uid="test-bulk-ingest")
    assert seen == [{"purchase": [customers[1].pk], "view": sorted([customers[0].pk, customers[1].pk])}]


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL's")
def test_a_batch_is_one_statement_on_postgresql(writer, shop):
    with CaptureQueriesContext(connection) as queries:
        assert _post(writer, [_event(n, customer=f"c{n % 3}") for n in range(50)]).status_code == 200
    writes = [q["sql"] for q in queries.captured_queries if "crm_interaction" in q["sql"]]
    assert len(writes) == 1 and "ON CONFLICT (event_id) DO NOTHING" in writes[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need a server database")
def test_concurrent_replays_store_each_event_once(shop):
    """Four clients send overlapping batches at once: every event is stored exactly once and the
    created counts add up to the rows stored."""
    from django.db import connections
    from django.utils.dateparse import parse_datetime

    batches = [[_event(n, customer=f"c{n % 3}") for n in range(start, start + 200)] for start in (0, 100, 0, 150)]
    created = []

    def send(batch):
        try:
            clean = [{**e, "occurred_at": parse_datetime(e["occurred_at"])} for e in batch]
            created.append(services.interaction_ingest_many(events=clean).created)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Interaction.objects.count() == 350
    assert sum(created) == 350

"""Customers and items: CRUD by natural key, bulk upsert, limits, filters, cursor pages."""
import pytest
from django.test import override_settings

from crm.models import Customer, Interaction, Item
from tests.conftest import assert_error
from tests.factories import CustomerFactory, InteractionFactory, ItemFactory

pytestmark = pytest.mark.django_db


def test_customer_create_read_update_delete(writer):
    # given / when
    created = writer.post("/api/v1/customers", {"external_id": "c-1", "email": "a@example.com", "country": "de",
                                                 "attributes": {"tier": "gold"}}, format="json")
    # then
    assert created.status_code == 201, created.content
    assert created.json()["country"] == "DE"
    assert writer.get("/api/v1/customers/c-1").json()["email"] == "a@example.com"
    patched = writer.patch("/api/v1/customers/c-1", {"first_name": "Ada"}, format="json")
    assert patched.json()["first_name"] == "Ada" and patched.json()["email"] == "a@example.com"
    put = writer.put("/api/v1/customers/c-1", {"email": "b@example.com"}, format="json")
    assert put.status_code == 200 and put.json()["email"] == "b@example.com"
    InteractionFactory(customer=Customer.objects.get())
    assert writer.delete("/api/v1/customers/c-1").status_code == 204
    assert not Customer.objects.exists() and not Interaction.objects.exists()
    assert_error(writer.get("/api/v1/customers/c-1"), 404, "not_found")


def test_customer_create_conflict_and_validation(writer):
    CustomerFactory(external_id="taken")
    assert_error(writer.post("/api/v1/customers", {"external_id": "taken"}, format="json"), 409, "conflict")
    body = assert_error(
        writer.post("/api/v1/customers", {"external_id": "x", "email": "nope", "country": "DEU",
                                          "attributes": [1]}, format="json"), 400, "invalid")
    assert set(body["fields"]) == {"email", "country", "attributes"}
    assert_error(writer.post("/api/v1/customers", {"external_id": "x" * 192}, format="json"), 400)
    assert_error(writer.post("/api/v1/customers", {"external_id": "x", "attributes": {"a": "\u0000"}},
                             format="json"), 400)


def test_item_create_read_update_delete(writer):
    created = writer.post("/api/v1/items", {"sku": "S1", "title": "Shoe", "price": "10.50", "tags": ["run"]},
                          format="json")
    assert created.status_code == 201, created.content
    assert writer.get("/api/v1/items/S1").json()["price"] == "10.50"
    assert writer.patch("/api/v1/items/S1", {"in_stock": False}, format="json").json()["in_stock"] is False
    body = assert_error(writer.patch("/api/v1/items/S1", {"price": "-1", "url": "nope"}, format="json"), 400)
    assert set(body["fields"]) == {"price", "url"}
    assert writer.delete("/api/v1/items/S1").status_code == 204
    assert_error(writer.delete("/api/v1/items/S1"), 404)
    assert_error(writer.post("/api/v1/items", {"sku": "S2"}, format="json"), 400)  # title required


def test_customer_bulk_upsert_creates_and_updates(writer):
    CustomerFactory(external_id="old", email="old@example.com", first_name="Keep")
    rows = [{"external_id": "old", "email": "new@example.com"}] + [{"external_id": f"n{i}"} for i in range(5)]
    response = writer.post("/api/v1/customers/bulk", {"customers": rows}, format="json")
    assert response.json() == {"created": 5, "updated": 1}
    old = Customer.objects.get(external_id="old")
    assert old.email == "new@example.com" and old.first_name == "Keep"
    # replaying changes nothing and duplicates nothing
    assert writer.post("/api/v1/customers/bulk", {"customers": rows}, format="json").json() == {
        "created": 0, "updated": 6}
    assert Customer.objects.count() == 6


def test_bulk_upsert_refuses_more_than_the_limit_with_a_message(writer):
    rows = [{"external_id": f"c{i}"} for i in range(1001)]
    body = assert_error(writer.post("/api/v1/customers/bulk", {"customers": rows}, format="json"), 400,
                        "batch_too_large")
    assert body["detail"] == "At most 1000 customers per request; got 1001."
    assert not Customer.objects.exists()
    assert writer.post("/api/v1/customers/bulk", {"customers": rows[:1000]}, format="json").json()["created"] == 1000


def test_bulk_upsert_validation(writer):
    body = assert_error(writer.post("/api/v1/customers/bulk", {"customers": [{"external_id": "a"}, {"email": "x"}]},
                                    format="json"), 400, "invalid")
    assert "customers" in body["fields"]
    body = assert_error(writer.post("/api/v1/customers/bulk", {"customers": [{"external_id": "a"}] * 2},
                                    format="json"), 400)
    assert "repeated: a" in body["fields"]["customers"][0]
    assert_error(writer.post("/api/v1/customers/bulk", [1, 2], format="json"), 400)
    assert not Customer.objects.exists()


def test_item_bulk_upsert_needs_titles_only_for_new_items(writer):
    ItemFactory(sku="known", title="Known")
    ok = writer.post("/api/v1/items/bulk", {"items": [{"sku": "known", "price": "5"}, {"sku": "new", "title": "N"}]},
                     format="json")
    assert ok.json() == {"created": 1, "updated": 1}
    assert Item.objects.get(sku="known").title == "Known"
    body = assert_error(writer.post("/api/v1/items/bulk", {"items": [{"sku": "other"}]}, format="json"), 400)
    assert "items[0].title" in body["fields"]
    rows = [{"sku": f"s{i}", "title": "t"} for i in range(1001)]
    assert_error(writer.post("/api/v1/items/bulk", {"items": rows}, format="json"), 400, "batch_too_large")


@override_settings(API_PAGE_SIZE=2)
def test_customer_list_filters_orders_and_pages_with_cursors(reader):
    for i in range(5):
        CustomerFactory(external_id=f"c{i}", country="DE" if i % 2 else "FR")
    seen, url = [], "/api/v1/customers"
    while url:
        page = reader.get(url).json()
        assert len(page["results"]) <= 2
        seen += [c["external_id"] for c in page["results"]]
        url = page["next"]
    assert seen == ["c4", "c3", "c2", "c1", "c0"]
    de = reader.get("/api/v1/customers?country=de&limit=10").json()["results"]
    assert {c["external_id"] for c in de} == {"c1", "c3"}
    oldest_first = reader.get("/api/v1/customers?ordering=id&limit=1").json()["results"]
    assert oldest_first[0]["external_id"] == "c0"
    assert_error(reader.get("/api/v1/customers?created_after=yesterday"), 400, "invalid")
    assert_error(reader.get("/api/v1/customers?cursor=garbage"), 404)


@override_settings(API_PAGE_SIZE=2)
def test_item_list_filters_and_pages(reader):
    for i in range(3):
        ItemFactory(sku=f"s{i}", category="shoes", price=10 * (i + 1))
    ItemFactory(sku="hat", category="hats")
    page = reader.get("/api/v1/items?category=Shoes&min_price=15").json()
    assert [i["sku"] for i in page["results"]] == ["s2", "s1"] and page["next"] is None
    first = reader.get("/api/v1/items").json()
    assert len(first["results"]) == 2 and reader.get(first["next"]).json()["results"]

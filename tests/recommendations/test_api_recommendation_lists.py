"""``GET customers/{id}/recommendations?list=discover|buy_again``: two stored lists, one endpoint."""
from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Feedback
from recommendations.models import ModelVersion, Recommendation
from tests.conftest import assert_error
from tests.factories import CustomerFactory, FeedbackFactory, ItemFactory, order_create

pytestmark = pytest.mark.django_db
URL = "/api/v1/customers/c1/recommendations"


@pytest.fixture
def served(db):
    """Customer c1 bought s0 and s1; the active version stores a discover list (s2, s3) and a
    buy-again list (s1, s0) for them."""
    customer = CustomerFactory(external_id="c1")
    items = [ItemFactory(sku=f"s{i}") for i in range(4)]
    order_create(customer=customer, items=items[:2], occurred_at=timezone.now() - timedelta(days=30))
    order_create(customer=customer, items=items[1:2], occurred_at=timezone.now() - timedelta(days=9))
    version = ModelVersion.objects.create(algorithm="ease", status=ModelVersion.Status.READY, is_active=True)
    for list_name, picks in (("discover", items[2:]), ("buy_again", [items[1], items[0]])):
        for rank, item in enumerate(picks, start=1):
            Recommendation.objects.create(
                model_version=version, customer=customer, list=list_name, rank=rank, item=item,
                score=1.0 / rank, reason=f"{list_name} {rank}",
            )
    return customer, items


def _skus(body):
    return [r["sku"] for r in body["results"]]


def test_default_is_the_discover_list(reader, served):
    body = reader.get(URL).json()
    assert body["list"] == "discover"
    assert _skus(body)[:2] == ["s2", "s3"]
    assert "s0" not in _skus(body) and "s1" not in _skus(body)  # bought: never discover
    assert reader.get(f"{URL}?list=discover").json() == body


def test_buy_again_list_serves_the_stored_rows_with_their_reasons(reader, served):
    body = reader.get(f"{URL}?list=buy_again&explain=true").json()
    assert body["list"] == "buy_again"
    assert [(r["sku"], r["reason"], r["source"]) for r in body["results"]] == [
        ("s1", "buy_again 1", "model"), ("s0", "buy_again 2", "model"),
    ]


def test_buy_again_honours_rejections_and_availability(reader, served):
    customer, items = served
    FeedbackFactory(customer=customer, item=items[1], kind=Feedback.Kind.DISLIKE)
    items[0].in_stock = False
    items[0].save()
    assert _skus(reader.get(f"{URL}?list=buy_again").json()) == []


def test_buy_again_without_a_stored_list_falls_back_to_the_purchase_history(reader, served):
    """An older version (no buy-again ranker) stored no buy-again rows: the customer's own history,
    most often bought first, still answers, and says why."""
    Recommendation.objects.filter(list="buy_again").delete()
    body = reader.get(f"{URL}?list=buy_again&explain=1").json()
    assert _skus(body) == ["s1", "s0"]
    assert {r["source"] for r in body["results"]} == {"history"}
    assert body["results"][0]["reason"] == "you buy this about every 3 weeks"
    assert body["results"][1]["reason"] == "you bought this 4 weeks ago"


def test_buy_again_is_empty_for_a_customer_who_bought_nothing(reader, served):
    CustomerFactory(external_id="newbie")
    body = reader.get("/api/v1/customers/newbie/recommendations?list=buy_again").json()
    assert body == {"customer": "newbie", "model_version": body["model_version"], "list": "buy_again",
                    "results": []}


@pytest.mark.parametrize("value", ["buy-again", "BUY_AGAIN", "both", "<script>", "discover,buy_again"])
def test_an_unknown_list_is_a_400_in_the_error_shape(reader, served, value):
    body = assert_error(reader.get(URL, {"list": value}), 400, "invalid")
    assert "list" in body["fields"]
    assert "discover" in body["fields"]["list"][0] and "buy_again" in body["fields"]["list"][0]


def test_openapi_documents_the_list_parameter(reader):
    schema = reader.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/customers/{external_id}/recommendations"]["get"]
    (param,) = [p for p in operation["parameters"] if p["name"] == "list"]
    assert param["in"] == "query"
    assert set(param["schema"]["enum"]) == {"discover", "buy_again"}
    assert param["schema"].get("default") == "discover"


def test_an_unsubscribed_customer_gets_no_buy_again_list(reader, served):
    customer, _ = served
    Recommendation.objects.filter(list="buy_again").delete()  # scoring stores none for them
    customer.unsubscribed_at = timezone.now()
    customer.save()
    assert reader.get(f"{URL}?list=buy_again").json()["results"] == []

"""The cache of ``GET customers/{id}/recommendations`` (recommendations/services/list_cache.py):
activation switches lists at once, and nothing a customer may no longer see is served from it."""
import pytest
from django.core.cache import cache
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from crm.models import Customer, Feedback
from crm.services import api_key_create, customer_erase
from recommendations.models import ModelVersion, Recommendation
from recommendations.services.list_cache import TOKEN_KEY, list_cache_seconds
from recommendations.services.registry import model_version_activate
from tests.factories import CustomerFactory, ItemFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/customers/c1/recommendations?limit=3"


@pytest.fixture
def cached(settings):
    """The list cache on (the test settings' locmem cache is one process, so it is coherent here)."""
    settings.RECOMMENDATIONS = {"LIST_CACHE_SECONDS": 300}


@pytest.fixture
def client_rw(db):
    _, raw_key = api_key_create(name="cache tests", scopes=["read", "write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def _store(version, customer, items):
    for rank, item in enumerate(items, start=1):
        Recommendation.objects.create(model_version=version, customer=customer, list="discover", rank=rank, item=item,
                                      score=1.0 / rank, reason=f"v{version.pk} {rank}")


@pytest.fixture
def served(db):
    """c1's active version stores s0, s1, s2; a second, ready version stores s3, s4."""
    customer = CustomerFactory(external_id="c1")
    items = [ItemFactory(sku=f"s{i}") for i in range(5)]
    first = ModelVersion.objects.create(algorithm="ease", status=ModelVersion.Status.READY, is_active=True)
    second = ModelVersion.objects.create(algorithm="ease", status=ModelVersion.Status.READY)
    _store(first, customer, items[:3])
    _store(second, customer, items[3:])
    return customer, items, first, second


def _skus(response):
    assert response.status_code == 200, response.content
    return [r["sku"] for r in response.json()["results"]]


def test_a_repeated_request_is_served_from_the_cache(client_rw, served, cached):
    """The second request reads neither the stored list nor the exclusions: rows deleted behind
    the cache's back (no signal) still show until something invalidates the customer."""
    # given
    assert _skus(client_rw.get(URL)) == ["s0", "s1", "s2"]
    Recommendation.objects.filter(customer=served[0]).delete()
    # when
    from django.db import connection

    with CaptureQueriesContext(connection) as queries:
        again = client_rw.get(URL)
    # then
    assert _skus(again) == ["s0", "s1", "s2"]
    assert not [q for q in queries.captured_queries if "recommendations_recommendation" in q["sql"]]


def test_activation_serves_the_new_versions_list_at_once(client_rw, served, cached):
    customer, items, first, second = served
    assert _skus(client_rw.get(URL)) == ["s0", "s1", "s2"]
    # when
    model_version_activate(version=second)
    # then
    body = client_rw.get(URL).json()
    assert body["model_version"] == second.pk
    assert [r["sku"] for r in body["results"]][:2] == ["s3", "s4"]


def test_not_interested_removes_the_item_from_the_cached_list(
    client_rw, served, cached, django_capture_on_commit_callbacks
):
    assert _skus(client_rw.get(URL)) == ["s0", "s1", "s2"]
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client_rw.post("/api/v1/feedback", {"customer": "c1", "item": "s1", "kind": "not_interested"},
                                  format="json")
    # then
    assert response.status_code == 201, response.content
    assert "s1" not in _skus(client_rw.get(URL))


def test_negative_feedback_recorded_without_the_api_invalidates_too(
    client_rw, served, cached, django_capture_on_commit_callbacks
):
    from crm.services import feedback_create

    customer, items, *_ = served
    assert "s0" in _skus(client_rw.get(URL))
    with django_capture_on_commit_callbacks(execute=True):
        feedback_create(customer=customer, item=items[0], kind=Feedback.Kind.DISLIKE)
    assert "s0" not in _skus(client_rw.get(URL))


def test_an_erased_customer_is_never_served_from_the_cache(
    client_rw, served, cached, django_capture_on_commit_callbacks
):
    """Erasure drops the customer's token; the request is a 404; a customer re-created under the
    same external id never sees the erased one's list."""
    customer, items, *_ = served
    assert _skus(client_rw.get(URL)) == ["s0", "s1", "s2"]
    erased_pk = customer.pk
    # when
    with django_capture_on_commit_callbacks(execute=True):
        customer_erase(customer=customer)
    # then
    assert cache.get(TOKEN_KEY.format(customer_id=erased_pk)) is None
    assert client_rw.get(URL).status_code == 404
    Customer.objects.create(external_id="c1", country="DE")
    again = client_rw.get(URL)
    assert again.status_code == 200
    assert [r["source"] for r in client_rw.get(URL + "&explain=true").json()["results"]] == \
        ["cold_start"] * len(again.json()["results"])


def test_a_customer_row_change_invalidates(client_rw, served, cached, django_capture_on_commit_callbacks):
    """Consent withdrawal (or any save of the customer) drops the cached lists."""
    customer, *_ = served
    assert _skus(client_rw.get(URL)) == ["s0", "s1", "s2"]
    Recommendation.objects.filter(customer=customer, rank=1).delete()  # behind the cache's back
    customer.country = "FR"
    with django_capture_on_commit_callbacks(execute=True):
        customer.save()
    assert _skus(client_rw.get(URL))[:2] == ["s1", "s2"]


def test_a_new_purchase_leaves_the_cached_discover_list(
    client_rw, served, cached, django_capture_on_commit_callbacks
):
    assert "s2" in _skus(client_rw.get(URL))
    # when the bulk endpoint stores a purchase of s2
    with django_capture_on_commit_callbacks(execute=True):
        response = client_rw.post("/api/v1/interactions/bulk", {"events": [
            {"event_id": "p1", "customer": "c1", "item": "s2", "kind": "purchase"},
        ]}, format="json")
    assert response.status_code == 200, response.content
    # then
    assert "s2" not in _skus(client_rw.get(URL))


def test_views_do_not_invalidate(client_rw, served, cached, django_capture_on_commit_callbacks):
    customer, *_ = served
    assert _skus(client_rw.get(URL)) == ["s0", "s1", "s2"]
    Recommendation.objects.filter(customer=customer, rank=1).delete()
    with django_capture_on_commit_callbacks(execute=True):
        client_rw.post("/api/v1/interactions/bulk", {"events": [
            {"event_id": "v1", "customer": "c1", "item": "s4", "kind": "view"},
        ]}, format="json")
    assert _skus(client_rw.get(URL)) == ["s0", "s1", "s2"]


def test_each_query_has_its_own_entry(client_rw, served, cached):
    assert _skus(client_rw.get("/api/v1/customers/c1/recommendations?limit=2")) == ["s0", "s1"]
    assert len(_skus(client_rw.get(URL))) == 3
    assert "score" in client_rw.get(URL + "&explain=true").json()["results"][0]


def test_off_by_default_with_a_per_process_cache(settings):
    settings.RECOMMENDATIONS = {}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert list_cache_seconds() == 0
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:6379/0"}}
    assert list_cache_seconds() == 60
    settings.RECOMMENDATIONS = {"LIST_CACHE_SECONDS": 0}
    assert list_cache_seconds() == 0


def test_without_the_cache_every_request_reads_the_store(client_rw, served):
    customer, *_ = served
    assert _skus(client_rw.get(URL)) == ["s0", "s1", "s2"]
    Recommendation.objects.filter(customer=customer, rank=1).delete()
    assert _skus(client_rw.get(URL))[:2] == ["s1", "s2"]

"""Fixtures every test may use: a staff session, a fresh cache, the shop the admin pages show, API clients by
scope; and the API's error-shape assertion (``assert_error``)."""
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import Feedback, Interaction
from crm.services import api_key_create
from recommendations.models import ItemEmbedding, ModelVersion, Recommendation, TrainingRun
from tests.admin_pages import _extra_rows, _version
from tests.factories import CustomerFactory, FeedbackFactory, InteractionFactory, ItemFactory, SegmentFactory


@pytest.fixture
def staff_client(client, django_user_model):
    """A logged-in superuser client, as a marketer with full rights sees the admin."""
    user = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle and lockout counters live in the (process-wide) cache: never carry them between tests."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


# --- the admin (tests/<app>/test_admin.py, helpers in tests/admin_pages.py) ----------------------------------


@pytest.fixture
def shop(db):
    """A small shop: customers with events and feedback, a segment, two versions (one serving), a live run."""
    customers = CustomerFactory.create_batch(3)
    shoes = ItemFactory.create_batch(2, category="shoes")
    hats = ItemFactory.create_batch(2, category="hats")
    for customer in customers:
        for item in [*shoes, *hats]:
            InteractionFactory(customer=customer, item=item, kind=Interaction.Kind.PURCHASE)
    FeedbackFactory(customer=customers[0], item=hats[0], kind=Feedback.Kind.COMPLAINT, comment="Arrived broken")
    FeedbackFactory(customer=customers[1], item=shoes[0], kind=Feedback.Kind.LIKE)
    segment = SegmentFactory(
        name="German buyers",
        rules={"match": "all", "conditions": [{"field": "country", "op": "in", "value": ["DE"]}]},
    )
    old = _version(algorithm="popularity", status=ModelVersion.Status.RETIRED)
    active = _version(is_active=True, activated_at=timezone.now(), previous=old)
    for customer in customers:
        for rank, item in enumerate([*shoes, *hats], start=1):
            Recommendation.objects.create(
                model_version=active, customer=customer, rank=rank, item=item, score=1.0 / rank,
                probability=0.5 / rank, reason="because you bought shoes",
            )
    ItemEmbedding.objects.create(
        item=shoes[0], model_name="all-MiniLM-L6-v2", text_hash="ab" * 32, dim=4, vector=b"\x00\x00\x80?" * 4
    )
    run = TrainingRun.objects.create(
        algorithm="auto", status=TrainingRun.Status.RUNNING, stage="training sequential", progress=0.42,
        log="embedding item texts\nfitting sequential", started_at=timezone.now() - timedelta(minutes=2),
        model_version=active,
    )
    _extra_rows(customer=customers[0], item=shoes[0])
    return {
        "customers": customers, "shoes": shoes, "hats": hats, "segment": segment, "old": old, "active": active,
        "run": run,
    }

# --- the API (tests/<app>/test_api*.py) -----------------------------------------------------------


@pytest.fixture
def make_client(db):
    """``make_client("read", "write")`` -> an APIClient sending a fresh key with those scopes."""

    def make(*scopes: str) -> APIClient:
        _, raw_key = api_key_create(name=f"test {'+'.join(scopes)}", scopes=list(scopes))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        client.raw_key = raw_key
        return client

    return make


@pytest.fixture
def reader(make_client):
    return make_client("read")


@pytest.fixture
def writer(make_client):
    return make_client("read", "write")


@pytest.fixture
def admin_client_key(make_client):
    return make_client("admin")


def assert_error(response, status: int, code: str | None = None) -> dict:
    """Every 4xx has the same shape: {"error", "detail", "fields"}."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"error", "detail", "fields"}, body
    assert isinstance(body["detail"], str) and isinstance(body["fields"], dict)
    if code:
        assert body["error"] == code, body
    return body

import pytest
from rest_framework.test import APIClient

from crm.services import api_key_create


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


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    """Key ids repeat across rolled-back tests; throttle counters must not."""
    from django.core.cache import cache

    cache.clear()

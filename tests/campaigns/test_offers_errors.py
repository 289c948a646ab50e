"""Errors of the offers export keep the API's JSON error shape, even with ``?format=csv``.

schemathesis (bench/drill_fuzz.py) found ``POST .../offers?format=csv`` answering a 405 as a CSV body.
"""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from crm.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    _, raw = api_key_create(name="test", scopes=["read", "write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.mark.parametrize(("method", "expected"), [("get", 404), ("post", 405), ("delete", 405)])
def test_offers_errors_are_json_in_the_error_shape_even_when_csv_is_asked_for(api, method, expected):
    # when
    response = getattr(api, method)("/api/v1/campaigns/999999/offers?format=csv")
    # then
    assert response.status_code == expected
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    assert set(response.json()) == {"error", "detail", "fields"}

"""The /api/v1/campaigns endpoints with API-key auth and scopes."""
from __future__ import annotations

import csv
import io

import pytest
from rest_framework.test import APIClient

from campaigns.models import Campaign, Recipient
from crm.services import api_key_create

pytestmark = pytest.mark.django_db


def _client(*scopes: str) -> APIClient:
    _, raw = api_key_create(name="test", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_create_build_send_results_recipients_offers(make_customers, django_capture_on_commit_callbacks):
    # given
    make_customers(4)
    api = _client("read", "write")
    # when
    created = api.post("/api/v1/campaigns", {"name": "API picks", "n_items": 2, "holdout_share": 0}, format="json")
    pk = created.json()["id"]
    built = api.post(f"/api/v1/campaigns/{pk}/build")
    with django_capture_on_commit_callbacks(execute=True):
        sent = api.post(f"/api/v1/campaigns/{pk}/send")
    results = api.get(f"/api/v1/campaigns/{pk}/results")
    recipients = api.get(f"/api/v1/campaigns/{pk}/recipients?limit=3")
    offers_csv = api.get(f"/api/v1/campaigns/{pk}/offers?format=csv")
    offers_json = api.get(f"/api/v1/campaigns/{pk}/offers")
    # then
    assert created.status_code == 201 and created.json()["status"] == "draft"
    assert built.status_code == 200 and built.json()["by_state"] == {"pending": 4}
    assert sent.status_code == 202
    assert results.status_code == 200 and results.json()["sent"] == 4
    page = recipients.json()
    assert len(page["results"]) == 3 and page["next"] and page["results"][0]["items"]
    rows = list(csv.DictReader(io.StringIO(offers_csv.content.decode())))
    assert offers_csv["Content-Type"].startswith("text/csv") and len(rows) == 8 and rows[0]["item_id"].startswith("SKU")
    assert len(offers_json.json()["offers"]) == 8


def test_scopes_and_auth_are_enforced(campaign):
    reader = _client("read")
    assert reader.get("/api/v1/campaigns").status_code == 200
    denied = reader.post(f"/api/v1/campaigns/{campaign.pk}/build")
    assert denied.status_code == 403 and "write" in denied.json()["detail"]
    assert APIClient().get("/api/v1/campaigns").status_code in (401, 403)


def test_bad_input_and_wrong_state_are_clear_errors(campaign):
    api = _client("write", "read")
    invalid = api.post("/api/v1/campaigns", {"name": "x", "holdout_share": 2}, format="json")
    assert invalid.status_code == 400 and "holdout_share" in invalid.json()["fields"]
    bad_template = api.patch(f"/api/v1/campaigns/{campaign.pk}", {"subject_template": "{% if %}"}, format="json")
    assert bad_template.status_code == 400
    not_built = api.post(f"/api/v1/campaigns/{campaign.pk}/send")
    assert not_built.status_code == 409 and "build it first" in not_built.json()["detail"]
    schedule = api.post(f"/api/v1/campaigns/{campaign.pk}/schedule", {"crontab": "0 9 * * 1"}, format="json")
    assert schedule.status_code == 200 and schedule.json()["crontab"] == "0 9 * * 1"
    assert api.get("/api/v1/campaigns/999999").status_code == 404


def test_patch_and_delete(campaign):
    api = _client("write", "read")
    assert api.patch(f"/api/v1/campaigns/{campaign.pk}", {"n_items": 7}, format="json").json()["n_items"] == 7
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    assert api.delete(f"/api/v1/campaigns/{campaign.pk}").status_code == 409
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENT)
    assert api.delete(f"/api/v1/campaigns/{campaign.pk}").status_code == 204
    assert not Recipient.objects.exists()

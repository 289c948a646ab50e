"""A campaign's item block comes from the list it chooses: discover (default) or buy again."""
from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.models import Campaign, Recipient
from campaigns.selectors import campaign_offers, recommendation_snapshots_for_customers, snapshot_from_recommended
from campaigns.services.build import campaign_build
from campaigns.services.render import recipient_render
from crm.services import api_key_create
from recommendations.models import Recommendation
from recommendations.selectors import ItemFilters, recommendation_list_for_customer
from tests.campaigns.conftest import recommend
from tests.factories import CustomerFactory, FeedbackFactory, ItemFactory, order_create

pytestmark = pytest.mark.django_db


def store_buy_again(version, customer, items) -> None:
    Recommendation.objects.bulk_create([
        Recommendation(model_version=version, customer=customer, list=Recommendation.List.BUY_AGAIN, rank=rank,
                       item=item, score=2.0 - rank * 0.01, reason=f"you buy this about every {rank + 1} weeks")
        for rank, item in enumerate(items, start=1)
    ])


@pytest.fixture
def regulars(version):
    """Three customers who bought items 0-3 (one order each); discover holds 4-11, buy again 3, 2, 1, 0."""
    items = [ItemFactory(category="shoes" if i % 2 else "bags", price=10 + i) for i in range(12)]
    customers = CustomerFactory.create_batch(3)
    for customer in customers:
        order_create(customer=customer, items=items[:4], occurred_at=timezone.now() - timedelta(days=20))
        recommend(version, customer, items[4:])
        store_buy_again(version, customer, [items[3], items[2], items[1], items[0]])
    return customers, items


def _items_of(recipient: Recipient) -> list[int]:
    return [entry["item_id"] for entry in recipient.items]


def test_a_buy_again_campaign_snapshots_the_buy_again_list(regulars):
    customers, items = regulars
    again = Campaign.objects.create(name="Time to restock", n_items=3, holdout_share=0.0,
                                    recommendation_list=Recommendation.List.BUY_AGAIN)
    discover = Campaign.objects.create(name="New for you", n_items=3, holdout_share=0.0)
    # when
    campaign_build(campaign=again)
    campaign_build(campaign=discover)
    # then
    restock = Recipient.objects.get(campaign=again, customer=customers[0])
    assert _items_of(restock) == [items[3].pk, items[2].pk, items[1].pk]
    assert restock.items[0]["reason"] == "you buy this about every 2 weeks"
    fresh = Recipient.objects.get(campaign=discover, customer=customers[0])
    assert discover.recommendation_list == "discover"
    assert _items_of(fresh) == [items[4].pk, items[5].pk, items[6].pk]


def test_buy_again_reasons_reach_the_email_and_the_offer_list(regulars):
    customers, items = regulars
    campaign = Campaign.objects.create(name="Restock", n_items=2, holdout_share=0.0,
                                       recommendation_list=Recommendation.List.BUY_AGAIN)
    campaign_build(campaign=campaign)
    rendered = recipient_render(recipient=Recipient.objects.get(campaign=campaign, customer=customers[0]))
    assert "You buy this about every 2 weeks" in rendered.text
    assert "You buy this about every 2 weeks" in rendered.html
    offers = campaign_offers(campaign=campaign)
    assert {o["reason"] for o in offers} == {"you buy this about every 2 weeks", "you buy this about every 3 weeks"}


def test_a_buy_again_campaign_leaves_out_rejected_items_and_skips_who_bought_nothing(regulars, version):
    customers, items = regulars
    FeedbackFactory(customer=customers[1], item=items[3], kind="not_interested")
    newcomer = CustomerFactory()
    campaign = Campaign.objects.create(name="Restock", n_items=2, holdout_share=0.0,
                                       recommendation_list=Recommendation.List.BUY_AGAIN)
    campaign_build(campaign=campaign)
    assert _items_of(Recipient.objects.get(campaign=campaign, customer=customers[1])) == [items[2].pk, items[1].pk]
    skipped = Recipient.objects.get(campaign=campaign, customer=newcomer)
    assert skipped.state == Recipient.State.SKIPPED and skipped.skip_reason == Recipient.SkipReason.NO_ITEMS


@pytest.mark.parametrize("max_per_category", [None, 1])
def test_bulk_selector_matches_the_per_customer_selector_on_buy_again(regulars, version, max_per_category):
    """Stored buy-again rows, a short stored list (topped up from the purchase history) and none."""
    customers, items = regulars
    Recommendation.objects.filter(customer=customers[1], list="buy_again", rank__gt=1).delete()
    Recommendation.objects.filter(customer=customers[2], list="buy_again").delete()
    FeedbackFactory(customer=customers[0], item=items[2], kind="dislike")
    case = {"limit": 3, "filters": ItemFilters(), "max_per_category": max_per_category, "list_name": "buy_again"}
    bulk = recommendation_snapshots_for_customers(customers=customers, **case)
    for customer in customers:
        single = recommendation_list_for_customer(customer=customer, **case)
        assert bulk[customer.pk] == snapshot_from_recommended(single), customer
    assert {e["item_id"] for e in bulk[customers[2].pk]} <= {i.pk for i in items[:4]}
    assert {e["source"] for e in bulk[customers[2].pk]} == {"history"}


def _api(*scopes: str) -> APIClient:
    _, raw = api_key_create(name="test", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_the_api_sets_and_shows_the_list(db):
    api = _api("read", "write")
    created = api.post("/api/v1/campaigns", {"name": "Restock", "recommendation_list": "buy_again"}, format="json")
    assert created.status_code == 201 and created.json()["recommendation_list"] == "buy_again"
    pk = created.json()["id"]
    default = api.post("/api/v1/campaigns", {"name": "Picks"}, format="json").json()
    assert default["recommendation_list"] == "discover"
    patched = api.patch(f"/api/v1/campaigns/{pk}", {"recommendation_list": "discover"}, format="json")
    assert patched.status_code == 200 and Campaign.objects.get(pk=pk).recommendation_list == "discover"
    for bad in ("buy-again", "both", "", None, 3):
        response = api.post("/api/v1/campaigns", {"name": "x", "recommendation_list": bad}, format="json")
        assert response.status_code == 400, bad
        assert "recommendation_list" in response.json()["fields"]
    assert Campaign.objects.count() == 2


def test_the_command_line_creates_a_buy_again_campaign(regulars):
    out = StringIO()
    call_command("campaign", "create", "--name", "Restock", "--list", "buy-again", "--holdout", "0", stdout=out)
    campaign = Campaign.objects.get(pk=int(out.getvalue()))
    assert campaign.recommendation_list == "buy_again"
    out = StringIO()
    call_command("campaign", "build", str(campaign.pk), stdout=out, stderr=StringIO())
    assert json.loads(out.getvalue())["by_state"] == {"pending": 3}
    with pytest.raises(CommandError, match="invalid choice: 'sometimes'"):
        call_command("campaign", "create", "--name", "x", "--list", "sometimes")


def test_the_admin_shows_and_filters_the_list(staff_client):
    restock = Campaign.objects.create(name="Restock run", recommendation_list=Recommendation.List.BUY_AGAIN)
    Campaign.objects.create(name="Discovery run")
    page = staff_client.get(f"/admin/campaigns/campaign/{restock.pk}/change/").content.decode()
    assert 'name="recommendation_list"' in page
    assert '<option value="buy_again" selected>' in page and '<option value="discover">' in page
    listed = staff_client.get("/admin/campaigns/campaign/?recommendation_list__exact=buy_again").content.decode()
    assert "Restock run" in listed and "Discovery run" not in listed

"""Building a run: who gets a row, with which items, and what a rebuild does."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Recipient, holdout_fraction
from campaigns.services.build import campaign_build
from tests.factories import CustomerFactory, FeedbackFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def test_build_snapshots_items_for_each_eligible_customer(campaign, make_customers, items):
    """Every contactable customer gets a pending row with the top items and their scores."""
    # given
    customers = make_customers(3)
    # when
    result = campaign_build(campaign=campaign)
    # then
    assert result.by_state == {"pending": 3}
    recipient = Recipient.objects.get(customer=customers[0])
    assert [e["item_id"] for e in recipient.items] == [i.pk for i in items[:3]]
    first = recipient.items[0]
    assert set(first) >= {"item_id", "sku", "title", "price", "url", "image_url", "score", "probability", "reason",
                          "rank"}
    assert first["rank"] == 1 and first["reason"] == "because #1"
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.READY and campaign.current_run == 1


def test_unsubscribed_no_consent_and_capped_customers_are_skipped_with_reason(campaign, make_customers, version):
    """Skipped rows say why: unsubscribed, no consent, no address, frequency cap."""
    # given
    ok, unsub, no_consent, no_email, capped = make_customers(5)
    unsub.unsubscribed_at = timezone.now()
    unsub.save()
    no_consent.email_opt_in = False
    no_consent.save()
    no_email.email = ""
    no_email.save()
    other = Campaign.objects.create(name="earlier")
    for _ in range(3):
        run = Recipient.objects.filter(campaign=other).count() + 1
        Recipient.objects.create(campaign=other, run=run, customer=capped, state=Recipient.State.SENT,
                                 sent_at=timezone.now() - timedelta(days=1))
    # when
    campaign_build(campaign=campaign)
    # then
    reasons = dict(Recipient.objects.filter(campaign=campaign).values_list("customer_id", "skip_reason"))
    assert reasons == {ok.pk: "", unsub.pk: "unsubscribed", no_consent.pk: "no_consent", no_email.pk: "no_email",
                       capped.pk: "frequency_cap"}


def test_email_campaign_never_mails_without_opt_in_even_if_consent_not_required(campaign, make_customers):
    """The loophole of the security review (finding 8): consent_required=False used to mail everyone."""
    customer = make_customers(1, email_opt_in=False)[0]
    campaign.consent_required = False
    campaign.save()
    campaign_build(campaign=campaign)
    recipient = Recipient.objects.get(customer=customer)
    assert (recipient.state, recipient.skip_reason) == ("skipped", "no_consent")


def test_offer_list_without_consent_required_includes_customers_without_opt_in(campaign, make_customers):
    """Offer lists are exported, not mailed: there consent_required still decides."""
    customer = make_customers(1, email_opt_in=False)[0]
    campaign.consent_required = False
    campaign.channel = "offer_list"
    campaign.save()
    campaign_build(campaign=campaign)
    assert Recipient.objects.get(customer=customer).state == Recipient.State.PENDING


def test_customers_without_items_are_skipped(campaign, version, items):
    """No stored list and no catalogue match: skipped with reason no_items."""
    customer = CustomerFactory()
    campaign.filter_category = "nothing-like-this"
    campaign.save()
    campaign_build(campaign=campaign)
    recipient = Recipient.objects.get(customer=customer)
    assert (recipient.state, recipient.skip_reason) == ("skipped", "no_items")


def test_holdout_is_deterministic_and_close_to_the_share(campaign, make_customers):
    """hash(campaign, customer) < share decides; the same customers on every rebuild."""
    # given
    customers = make_customers(200)
    campaign.holdout_share = 0.25
    campaign.save()
    # when
    campaign_build(campaign=campaign)
    first = set(Recipient.objects.filter(campaign=campaign, is_holdout=True).values_list("customer_id", flat=True))
    campaign_build(campaign=campaign)
    second = set(Recipient.objects.filter(campaign=campaign, is_holdout=True).values_list("customer_id", flat=True))
    # then
    assert first == second == {c.pk for c in customers if holdout_fraction(campaign.pk, c.pk) < 0.25}
    assert 25 <= len(first) <= 75
    assert set(Recipient.objects.filter(is_holdout=True).values_list("state", flat=True)) == {"holdout"}


def test_item_filters_and_diversity_apply(campaign, make_customers, items):
    customer = make_customers(1)[0]
    campaign.filter_category = "shoes"
    campaign.filter_max_price = 18
    campaign.save()
    campaign_build(campaign=campaign)
    chosen = Recipient.objects.get(customer=customer).items
    assert chosen and all(e["category"] == "shoes" and float(e["price"]) <= 18 for e in chosen)


def test_negative_feedback_items_are_left_out(campaign, make_customers, items):
    customer = make_customers(1)[0]
    FeedbackFactory(customer=customer, item=items[0], kind="not_interested")
    campaign_build(campaign=campaign)
    assert items[0].pk not in Recipient.objects.get(customer=customer).item_ids


def test_rotation_demotes_items_sent_recently(campaign, make_customers, items):
    """Items e-mailed in the customer's recent campaigns go to the back."""
    # given
    customer = make_customers(1)[0]
    earlier = Campaign.objects.create(name="last week", frequency_cap_count=0)
    Recipient.objects.create(campaign=earlier, customer=customer, state=Recipient.State.SENT,
                             sent_at=timezone.now() - timedelta(days=3),
                             items=[{"item_id": items[0].pk}, {"item_id": items[1].pk}])
    # when
    campaign_build(campaign=campaign)
    # then
    assert Recipient.objects.get(campaign=campaign).item_ids == [i.pk for i in items[2:5]]


def test_audience_segment_limits_the_customers(campaign, make_customers):
    de, fr = make_customers(1, country="DE")[0], make_customers(1, country="FR")[0]
    campaign.audience = SegmentFactory(rules={"match": "all", "conditions": [
        {"field": "country", "op": "in", "value": ["FR"]}]})
    campaign.save()
    campaign_build(campaign=campaign)
    assert list(Recipient.objects.values_list("customer_id", flat=True)) == [fr.pk]
    assert de.pk


def test_rebuild_never_duplicates_and_keeps_sent_rows(campaign, make_customers, items, settings):
    """Re-running a build updates unsent rows, adds new customers, leaves sent rows alone."""
    # given
    settings.CAMPAIGNS = {"BUILD_CHUNK_SIZE": 2}
    first, second, third = make_customers(3)
    campaign_build(campaign=campaign)
    sent = Recipient.objects.get(customer=first)
    Recipient.objects.filter(pk=sent.pk).update(state=Recipient.State.SENT, items=[{"item_id": 0}])
    make_customers(1)
    # when
    result = campaign_build(campaign=campaign)
    # then
    assert Recipient.objects.filter(campaign=campaign).count() == 4
    assert (result.created, result.updated, result.unchanged) == (1, 2, 1)
    assert Recipient.objects.get(pk=sent.pk).items == [{"item_id": 0}]

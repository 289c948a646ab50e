"""Results: counts, attributed conversions, and the uplift interval on hand-built numbers."""
from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Click, Recipient
from campaigns.services.results import campaign_results, uplift_interval
from tests.factories import CustomerFactory, InteractionFactory, ItemFactory


def test_uplift_interval_on_hand_built_numbers():
    """p_t = 0.10 (n=1000), p_h = 0.05 (n=500): d = 0.05, se = sqrt(.09/1000 + .0475/500)."""
    ci = uplift_interval(treated_successes=100, treated_n=1000, control_successes=25, control_n=500)
    se = math.sqrt(0.1 * 0.9 / 1000 + 0.05 * 0.95 / 500)
    assert ci["uplift"] == pytest.approx(0.05)
    assert ci["ci_low"] == pytest.approx(0.05 - 1.959964 * se, abs=1e-6)
    assert ci["ci_high"] == pytest.approx(0.05 + 1.959964 * se, abs=1e-6)
    assert ci["significant"] is True
    assert uplift_interval(treated_successes=1, treated_n=10, control_successes=0, control_n=0) is None


@pytest.mark.django_db
def test_results_count_states_conversions_and_holdout_purchases():
    # given: 4 sent (2 opened, 1 clicked and bought within the window), 2 holdout (1 bought), 1 skipped
    now = timezone.now()
    item, other = ItemFactory(price=20), ItemFactory()
    campaign = Campaign.objects.create(name="results")
    snapshot = [{"item_id": item.pk}]
    sent = [Recipient.objects.create(campaign=campaign, customer=CustomerFactory(), state="sent", items=snapshot,
                                     sent_at=now - timedelta(days=2)) for _ in range(4)]
    holdout = [Recipient.objects.create(campaign=campaign, customer=CustomerFactory(), state="holdout",
                                        is_holdout=True, items=snapshot) for _ in range(2)]
    Recipient.objects.create(campaign=campaign, customer=CustomerFactory(), state="skipped", skip_reason="no_consent")
    Recipient.objects.filter(pk__in=[sent[0].pk, sent[1].pk]).update(opened_at=now)
    Recipient.objects.filter(pk=sent[0].pk).update(clicked_at=now - timedelta(days=1))
    Click.objects.create(recipient=sent[0], item=item, clicked_at=now - timedelta(days=1))
    Click.objects.create(recipient=sent[1], item=item, clicked_at=now - timedelta(days=1), flagged=True)
    InteractionFactory(customer=sent[0].customer, item=item, kind="purchase", quantity=2,
                       occurred_at=now - timedelta(hours=12))
    InteractionFactory(customer=sent[1].customer, item=item, kind="purchase", value=5.5,
                       occurred_at=now - timedelta(hours=12))  # scanner click: not attributed
    InteractionFactory(customer=sent[2].customer, item=other, kind="purchase", occurred_at=now)  # not recommended
    InteractionFactory(customer=holdout[0].customer, item=item, kind="purchase", occurred_at=now)
    # when
    results = campaign_results(campaign=campaign)
    # then
    assert {k: results[k] for k in ("recipients", "holdout", "skipped", "sent", "failed", "in_doubt", "opened",
                                    "clicked", "converted", "scanner_flagged")} == {
        "recipients": 7, "holdout": 2, "skipped": 1, "sent": 4, "failed": 0, "in_doubt": 0, "opened": 2,
        "clicked": 1, "converted": 1, "scanner_flagged": 0}
    assert results["skipped_by_reason"] == {"no_consent": 1}
    assert results["revenue"] == "40.00"
    uplift = results["purchase_uplift"]
    assert (results["treated_purchasers"], results["holdout_purchasers"]) == (2, 1)
    assert (uplift["treated_rate"], uplift["control_rate"]) == (0.5, 0.5)
    assert results["click_uplift"]["uplift"] == 0.25

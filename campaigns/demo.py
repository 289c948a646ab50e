"""The demo's sample campaign: built from the trained model, sent into the file outbox, with simulated replies.

``make demo`` calls ``demo_campaign_create`` after training so the admin opens on a campaign with a
funnel and an uplift to look at. The send goes to the file backend (``EMAIL_FILE_PATH``) whatever
``EMAIL_URL`` says: a demo never e-mails anyone. The replies (opens, clicks, purchases) are simulated
over the days after a send dated three days back, holdout customers buying recommended items less
often than e-mailed ones, so the uplift has something to measure.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.test.utils import override_settings
from django.utils import timezone

from crm.models import Interaction

from .models import Campaign, Recipient
from .services.build import campaign_build
from .services.campaign import campaign_create
from .services.results import campaign_conversions_update
from .services.send import campaign_send
from .services.tracking import recipient_click, recipient_open

DEMO_NAME = "Picked for you (demo)"
SENT_DAYS_AGO = 3
FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"


@dataclass(frozen=True)
class DemoCampaignReport:
    campaign: Campaign
    sent: int
    holdout: int
    outbox: str


def _simulate_replies(campaign: Campaign, rng: random.Random) -> None:
    now = timezone.now()
    sent_at = now - timedelta(days=SENT_DAYS_AGO)
    Recipient.objects.filter(campaign=campaign, state=Recipient.State.SENT).update(sent_at=sent_at, claimed_at=sent_at)
    Campaign.objects.filter(pk=campaign.pk).update(sent_at=sent_at, built_at=sent_at - timedelta(minutes=5))
    purchases = []
    for recipient in Recipient.objects.filter(campaign=campaign).exclude(state=Recipient.State.SKIPPED):
        items = recipient.items or []
        if not items:
            continue
        if recipient.state == Recipient.State.SENT and rng.random() < 0.45:
            opened = sent_at + timedelta(minutes=rng.randint(20, 2000))
            recipient_open(recipient_id=recipient.pk, at=opened)
            if rng.random() < 0.35:
                item = rng.choice(items[:3])
                clicked = opened + timedelta(seconds=rng.randint(30, 600))
                recipient_click(recipient=recipient, item_id=item["item_id"], user_agent="Mozilla/5.0 (demo)",
                                at=clicked)
                if rng.random() < 0.4:
                    purchases.append((recipient, item, clicked + timedelta(minutes=rng.randint(3, 90))))
        elif recipient.is_holdout and rng.random() < 0.04:
            item = rng.choice(items[:3])
            purchases.append((recipient, item, sent_at + timedelta(hours=rng.randint(2, 60))))
    Interaction.objects.bulk_create([
        Interaction(customer_id=recipient.customer_id, item_id=item["item_id"], kind=Interaction.Kind.PURCHASE,
                    occurred_at=min(at, now), quantity=1, value=float(item.get("price") or 0) or None,
                    source=Interaction.Source.WEB, event_id=f"demo:campaign:{recipient.pk}:{item['item_id']}")
        for recipient, item, at in purchases
    ], ignore_conflicts=True)
    campaign_conversions_update(campaign=campaign)


def demo_campaign_create(*, seed: int = 42) -> DemoCampaignReport | None:
    """Create, build and send the sample campaign once; None when it already exists."""
    if Campaign.objects.filter(name=DEMO_NAME).exists():
        return None
    campaign = campaign_create(
        name=DEMO_NAME,
        description="A sample weekly e-mail: four picks per customer, 10% kept out to measure the effect.",
        n_items=4, holdout_share=0.1, max_per_category=2,
    )
    campaign_build(campaign=campaign)
    campaign.refresh_from_db()
    with override_settings(EMAIL_BACKEND=FILE_BACKEND):
        campaign_send(campaign=campaign, wait=True)
    campaign.refresh_from_db()
    _simulate_replies(campaign, random.Random(seed))
    campaign.refresh_from_db()
    counts = {state: Recipient.objects.filter(campaign=campaign, state=state).count()
              for state in (Recipient.State.SENT, Recipient.State.HOLDOUT)}
    return DemoCampaignReport(campaign, counts[Recipient.State.SENT], counts[Recipient.State.HOLDOUT],
                              str(settings.EMAIL_FILE_PATH))

"""Opens, clicks (with link-scanner detection) and one-click unsubscribes coming back from e-mails.

A click becomes a ``click`` Interaction (source ``campaign``) with a deterministic event id, so a
double click is stored once. Clicks that look automated - a known scanner user agent, a click
within seconds of delivery, or every link of a message clicked within a few seconds - are flagged:
the Interaction gets ``excluded_from_training=True`` and the click does not count in results.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from campaigns.conf import campaigns_settings
from campaigns.models import Click, Recipient
from crm.models import Interaction, Item
from crm.services import customer_unsubscribe, interaction_record

SCANNER_USER_AGENT = "scanner user agent"
SCANNER_TOO_SOON = "clicked within seconds of delivery"
SCANNER_ALL_LINKS = "every link clicked within seconds"


def recipient_open(*, recipient_id: int, at: datetime | None = None, user_agent: str = "") -> bool:
    """Record the first open; later opens change nothing. True when this was the first.

    A machine's fetch (Apple Mail Privacy Protection's bare "Mozilla/5.0", a scanner) is kept
    apart as a machine open: it counts in no open rate.
    """
    from campaigns.services.deliverability import machine_open_record, user_agent_is_machine

    if user_agent and user_agent_is_machine(user_agent):
        machine_open_record(recipient_id=recipient_id, at=at or timezone.now())
        return False
    return bool(
        Recipient.objects.filter(pk=recipient_id, opened_at__isnull=True).update(opened_at=at or timezone.now())
    )


def click_scanner_reason(*, recipient: Recipient, user_agent: str, at: datetime) -> str:
    conf = campaigns_settings()
    agent = user_agent.lower()
    if agent and any(marker in agent for marker in conf.SCANNER_USER_AGENTS):
        return SCANNER_USER_AGENT
    if recipient.sent_at and (at - recipient.sent_at).total_seconds() < conf.SCANNER_MIN_SECONDS_AFTER_SEND:
        return SCANNER_TOO_SOON
    return ""


def click_event_id(*, recipient_id: int, item_id: int) -> str:
    return f"campaign-click:{recipient_id}:{item_id}"


def recipient_click(*, recipient: Recipient, item_id: int, user_agent: str = "",
                    at: datetime | None = None) -> str | None:
    """Record a click on one of the recipient's items; returns the item's own URL to redirect to.

    None when ``item_id`` is not one of this recipient's items or the item has no URL.
    """
    entry = next((e for e in recipient.items if e["item_id"] == item_id), None)
    if entry is None:
        return None
    item = Item.objects.filter(pk=item_id).first()
    url = (item.url if item else "") or entry.get("url") or ""
    if item is None or not url:
        return None
    at = at or timezone.now()
    reason = click_scanner_reason(recipient=recipient, user_agent=user_agent, at=at)
    with transaction.atomic():
        click, created = Click.objects.get_or_create(
            recipient=recipient, item=item,
            defaults={"clicked_at": at, "user_agent": user_agent[:500], "flagged": bool(reason), "flag_reason": reason},
        )
        if not created:
            Click.objects.filter(pk=click.pk).update(count=F("count") + 1)
            return url
        interaction, _ = interaction_record(
            customer=recipient.customer, item=item, kind=Interaction.Kind.CLICK,
            event_id=click_event_id(recipient_id=recipient.pk, item_id=item_id), occurred_at=at,
            source=Interaction.Source.CAMPAIGN, excluded_from_training=bool(reason),
        )
        Click.objects.filter(pk=click.pk).update(interaction=interaction)
        if not reason:
            _flag_if_all_links_clicked(recipient)
        _recipient_click_state_update(recipient.pk, at)
    return url


def _flag_if_all_links_clicked(recipient: Recipient) -> None:
    links = set(recipient.item_ids)
    if len(links) < 2:
        return
    clicks = list(
        Click.objects.filter(recipient=recipient).values_list("pk", "item_id", "clicked_at", "interaction_id")
    )
    if {c[1] for c in clicks} < links:
        return
    times = [c[2] for c in clicks]
    window = timedelta(seconds=campaigns_settings().SCANNER_ALL_LINKS_WINDOW_SECONDS)
    if max(times) - min(times) > window:
        return
    Click.objects.filter(pk__in=[c[0] for c in clicks], flagged=False).update(
        flagged=True, flag_reason=SCANNER_ALL_LINKS
    )
    Interaction.objects.filter(pk__in=[c[3] for c in clicks if c[3]]).update(excluded_from_training=True)


def _recipient_click_state_update(recipient_id: int, at: datetime) -> None:
    """``clicked_at``: the first click that counts; ``click_flagged``: any looked automated."""
    clicks = Click.objects.filter(recipient_id=recipient_id)
    first = clicks.filter(flagged=False).order_by("clicked_at").values_list("clicked_at", flat=True).first()
    Recipient.objects.filter(pk=recipient_id).update(
        clicked_at=first, click_flagged=clicks.filter(flagged=True).exists()
    )
    if first is not None:  # a real click implies an open, even with images blocked
        Recipient.objects.filter(pk=recipient_id, opened_at__isnull=True).update(opened_at=first)


def recipient_unsubscribe(*, recipient: Recipient, at: datetime | None = None) -> bool:
    """RFC 8058 one-click unsubscribe: withdraw the customer's e-mail consent. False if already out."""
    from campaigns.services.webhooks_out import recipient_event_emit

    at = at or timezone.now()
    Recipient.objects.filter(pk=recipient.pk, unsubscribed_at__isnull=True).update(unsubscribed_at=at)
    withdrawn = customer_unsubscribe(customer=recipient.customer, at=at)
    recipient_event_emit(event_type="recipient.unsubscribed", recipient=recipient)
    return withdrawn

"""Deliverability: provider message ids, tracking events from providers, the suppression list.

Providers (through django-anymail) POST delivery events to ``/webhooks/esp/<provider>/tracking/``;
anymail checks the basic auth (and the provider's signature where it has one), normalises the
payload and sends its ``tracking`` signal, which ``tracking_event_record`` receives:

- the recipient is found by the provider's message id (stored at send time in ``RecipientDelivery``);
- ``(provider, event id)`` is stored in ``DeliveryEvent`` first, so a replayed webhook changes nothing;
- delivered / deferred / bounced / complained update the recipient's ``RecipientDelivery``;
- a hard bounce or a complaint suppresses the address (``Suppression``): every later build skips
  it and every send re-checks it; a complaint also withdraws the customer's consent and files a
  ``complaint`` Feedback;
- a soft bounce re-sends the message later, at most ``SOFT_BOUNCE_MAX_RETRIES`` times;
- an open counts only when it is not a machine's (Apple Mail Privacy Protection prefetch, a
  scanner); a provider click on one of the e-mail's item links is recorded like our own click.
"""
from __future__ import annotations

import contextvars
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from anymail.signals import EventType
from django.db import connection, transaction
from django.db.models import F
from django.urls import Resolver404, resolve
from django.utils import timezone

from campaigns.conf import campaigns_settings
from campaigns.links import CLICK_SALT, token_load
from campaigns.models import DeliveryEvent, Recipient, RecipientDelivery, Suppression
from campaigns.selectors import in_values
from crm.models import Feedback
from crm.services import feedback_create

logger = logging.getLogger(__name__)

HARD, SOFT = "hard", "soft"
FINAL_STATUSES = (RecipientDelivery.Status.BOUNCED, RecipientDelivery.Status.COMPLAINED)


# --- sending ------------------------------------------------------------------------------------

def provider_message_id(message, email: str) -> str:
    """The provider's id for ``email`` after an anymail send ("" for SMTP/console backends)."""
    status = getattr(message, "anymail_status", None)
    if status is None:
        return ""
    per_recipient = status.recipients.get(email) or status.recipients.get(email.lower())
    message_id = per_recipient.message_id if per_recipient else status.message_id
    if isinstance(message_id, set):  # several ids for one message: none identifies this recipient
        return ""
    return "" if message_id is None else str(message_id)


def recipient_delivery_accepted(*, recipient: Recipient, message, esp: str = "") -> None:
    """After the provider accepted the message: remember its id for the webhooks to come."""
    message_id = provider_message_id(message, recipient.email)
    if not message_id and not esp:
        return
    RecipientDelivery.objects.update_or_create(
        recipient=recipient,
        defaults={"esp": esp, "provider_message_id": message_id, "status": RecipientDelivery.Status.ACCEPTED,
                  "status_at": timezone.now()},
    )


def send_error_outcome(exc: AnymailError) -> str:
    """``failed`` (never retried), ``deferred`` (pending again, retried) or ``in_doubt``.

    A refused recipient or a 4xx from the API (bad request, invalid address) fails; 429 and 5xx
    are the provider saying "later"; no HTTP status (connection error) means we cannot know.
    """
    if isinstance(exc, AnymailRecipientsRefused):
        return "failed"
    status = getattr(exc, "status_code", None)
    if isinstance(exc, AnymailAPIError) and status is not None:
        if status == 429 or status >= 500:
            return "deferred"
        return "failed"
    if isinstance(exc, AnymailAPIError) and getattr(exc, "response", None) is None:
        return "in_doubt"
    return "failed"


def send_error_text(exc: AnymailError) -> str:
    """The provider's error for the recipient row (anymail's ``str`` needs a response object)."""
    try:
        return str(exc)[:2000]
    except Exception:  # noqa: BLE001 - a malformed provider answer must not hide the error itself
        return repr(exc.args)[:2000]


# --- suppression --------------------------------------------------------------------------------

def suppressed_emails(*, emails: list[str]) -> set[str]:
    """The lower-cased addresses among ``emails`` that are actively suppressed."""
    lowered = sorted({e.lower() for e in emails if e})
    found: set[str] = set()
    step = 20_000 if connection.vendor == "postgresql" else 900  # one array parameter there
    for i in range(0, len(lowered), step):
        chunk = in_values("email", lowered[i:i + step], array_type="text")
        found.update(Suppression.objects.active().filter(chunk).values_list("email", flat=True))
    return found


def suppression_add(*, email: str, reason: str, detail: str = "", esp: str = "") -> tuple[Suppression, bool]:
    """Suppress ``email`` (idempotent: an active suppression is kept as it is)."""
    email = email.strip().lower()
    if not email:
        raise ValueError("An e-mail address is required.")
    with transaction.atomic():
        existing = Suppression.objects.active().select_for_update().filter(email=email).first()
        if existing:
            return existing, False
        return Suppression.objects.create(email=email, reason=reason, detail=detail[:2000], esp=esp), True


def suppression_lift(*, suppression: Suppression, note: str, by: str = "") -> bool:
    """Lift an active suppression with a note saying why (e.g. "mailbox fixed, customer asked")."""
    if not note.strip():
        raise ValueError("Say why the suppression is lifted (a note is required).")
    return bool(Suppression.objects.filter(pk=suppression.pk, lifted_at__isnull=True).update(
        lifted_at=timezone.now(), lifted_by=by[:150], lift_note=note.strip(),
    ))


def recipients_skip_suppressed(*, recipients: list[Recipient]) -> tuple[list[Recipient], int]:
    """At send time: mark suppressed pending recipients skipped; returns the others and the count."""
    suppressed = suppressed_emails(emails=[r.email for r in recipients])
    if not suppressed:
        return recipients, 0
    hit = {r.pk for r in recipients if r.email and r.email.lower() in suppressed}
    skipped = Recipient.objects.filter(pk__in=hit, state=Recipient.State.PENDING).update(
        state=Recipient.State.SKIPPED, skip_reason=Recipient.SkipReason.SUPPRESSED,
    )
    return [r for r in recipients if r.pk not in hit], skipped


# --- tracking events in ---------------------------------------------------------------------------

@dataclass
class WebhookTally:
    """What one webhook request did: the view answers 4xx when no event matched a known message."""

    matched: int = 0
    unknown: int = 0
    replays: int = 0


_tally: contextvars.ContextVar[WebhookTally | None] = contextvars.ContextVar("deliverability_tally", default=None)


def tally_start() -> WebhookTally:
    tally = WebhookTally()
    _tally.set(tally)
    return tally


def tally_stop() -> None:
    _tally.set(None)


def _count(field: str) -> None:
    tally = _tally.get()
    if tally is not None:
        setattr(tally, field, getattr(tally, field) + 1)


def _esp_key(esp_name: str) -> str:
    return esp_name.lower().replace(" ", "_")


def _raw(esp_event: Any) -> dict:
    """The provider's raw event as a plain dict (JSON payloads; form posts are QueryDicts)."""
    if isinstance(esp_event, dict):
        return esp_event
    if hasattr(esp_event, "dict"):
        return esp_event.dict()
    return {}


def event_key(event, esp: str) -> str:
    """The provider's event id; for providers without one (Brevo, some SendGrid events) a content hash."""
    if event.event_id:  # SES shares one SNS id between the recipients of a notification
        return f"{event.event_id}|{(event.recipient or '').lower()}"[:255]
    raw = json.dumps(_raw(event.esp_event), sort_keys=True, default=str)
    basis = f"{esp}|{event.event_type}|{event.message_id}|{event.recipient}|{event.timestamp}|{raw}"
    return "sha256:" + hashlib.sha256(basis.encode()).hexdigest()


def recipient_for_event(event) -> Recipient | None:
    """The recipient the event is about: by provider message id, else by our Message-ID header."""
    raw_id = str(event.message_id or "").strip()
    if not raw_id:
        return None
    bare = raw_id.strip("<>")
    candidates = {raw_id, bare, f"<{bare}>"}
    delivery = RecipientDelivery.objects.select_related("recipient__customer").filter(
        provider_message_id__in=candidates
    ).first()
    recipient = delivery.recipient if delivery else (
        Recipient.objects.select_related("customer").filter(message_id__in=candidates).first()
    )
    if recipient is None:
        return None
    if event.recipient and recipient.email and event.recipient.strip().lower() != recipient.email.lower():
        return None  # the id is known but the address is not the one we sent it to
    return recipient


def bounce_kind(event) -> str:
    """Hard or soft, from the provider's own classification, else from the SMTP status class."""
    raw = _raw(event.esp_event)
    bounce = raw.get("bounce")
    if isinstance(bounce, dict) and bounce.get("bounceType"):  # Amazon SES
        return HARD if bounce["bounceType"] == "Permanent" else SOFT
    if raw.get("Type") in ("SoftBounce", "Transient", "DnsError", "VirusNotification"):  # Postmark
        return SOFT
    if raw.get("event") == "soft_bounce":  # Brevo
        return SOFT
    data = raw.get("event-data")
    if isinstance(data, dict) and data.get("severity"):  # Mailgun
        return SOFT if data["severity"] == "temporary" else HARD
    if raw.get("event") == "bounce" and raw.get("type") == "blocked":  # SendGrid
        return SOFT
    response = (event.mta_response or "").strip()
    if response[:1] == "4" or " 4." in response[:20]:
        return SOFT
    return HARD


def open_is_machine(event, recipient: Recipient) -> bool:
    """Apple Mail Privacy Protection and scanners fetch images without a person reading anything."""
    conf = campaigns_settings()
    raw = _raw(event.esp_event)
    if raw.get("sg_machine_open") in (True, "true"):  # SendGrid flags Apple MPP opens itself
        return True
    if raw.get("event") in ("unique_proxy_open", "proxy_open"):  # Brevo: opened through a proxy (Apple MPP)
        return True
    client = (raw.get("event-data") or {}).get("client-info") if isinstance(raw.get("event-data"), dict) else None
    if isinstance(client, dict) and client.get("bot"):  # Mailgun: client-info.bot ("apple", ...)
        return True
    if event.user_agent and user_agent_is_machine(event.user_agent):
        return True
    at = event.timestamp or timezone.now()
    return bool(recipient.sent_at and (at - recipient.sent_at).total_seconds() < conf.SCANNER_MIN_SECONDS_AFTER_SEND)


def user_agent_is_machine(user_agent: str) -> bool:
    """An exact machine agent (Apple MPP's bare "Mozilla/5.0") or a known scanner's marker."""
    conf = campaigns_settings()
    agent = user_agent.strip().lower()
    if agent in {a.lower() for a in conf.MACHINE_OPEN_USER_AGENTS}:
        return True
    return bool(agent) and any(marker in agent for marker in conf.SCANNER_USER_AGENTS)


def machine_open_record(*, recipient_id: int, at: datetime) -> None:
    delivery, _ = RecipientDelivery.objects.get_or_create(recipient_id=recipient_id)
    RecipientDelivery.objects.filter(pk=delivery.pk, machine_opened_at__isnull=True).update(machine_opened_at=at)


def tracking_event_record(*, event, esp_name: str) -> str:
    """Apply one normalised anymail tracking event; returns what it did (also stored on the event)."""
    esp = _esp_key(esp_name)
    recipient = recipient_for_event(event)
    if recipient is None:
        _count("unknown")
        logger.info("%s %s event for unknown message %r ignored", esp, event.event_type, event.message_id)
        return "unknown message"
    at = event.timestamp or timezone.now()
    kind = bounce_kind(event) if event.event_type == EventType.BOUNCED else ""
    with transaction.atomic(savepoint=False):  # the webhook view's transaction, or its own
        stored, created = DeliveryEvent.objects.get_or_create(
            esp=esp, event_id=event_key(event, esp),
            defaults={
                "event_type": event.event_type, "recipient": recipient, "email": (event.recipient or "")[:254],
                "message_id": str(event.message_id or "")[:255], "occurred_at": at,
                "reject_reason": event.reject_reason or "", "bounce_kind": kind,
            },
        )
        if not created:
            _count("replays")
            return "replay"
        _count("matched")
        outcome, machine = _apply(event, recipient, esp, at, kind)
        DeliveryEvent.objects.filter(pk=stored.pk).update(outcome=outcome[:200], machine=machine)
    return outcome


def _delivery(recipient: Recipient, esp: str) -> RecipientDelivery:
    delivery, _ = RecipientDelivery.objects.select_for_update().get_or_create(
        recipient=recipient, defaults={"esp": esp}
    )
    return delivery


def _set_status(delivery: RecipientDelivery, status: str, at: datetime, **fields) -> None:
    if delivery.status in FINAL_STATUSES and status not in FINAL_STATUSES:
        status = delivery.status  # a late "delivered" never hides a bounce or a complaint
    RecipientDelivery.objects.filter(pk=delivery.pk).update(status=status, status_at=at, **fields)


def _apply(event, recipient: Recipient, esp: str, at: datetime, kind: str) -> tuple[str, bool]:
    from campaigns.services.tracking import recipient_click, recipient_open, recipient_unsubscribe
    from campaigns.services.webhooks_out import recipient_event_emit

    etype = event.event_type
    detail = (event.mta_response or event.description or "")[:2000]
    if etype == EventType.DELIVERED:
        delivery = _delivery(recipient, esp)
        _set_status(delivery, RecipientDelivery.Status.DELIVERED, at, delivered_at=delivery.delivered_at or at)
        return "delivered", False
    if etype == EventType.DEFERRED:
        _set_status(_delivery(recipient, esp), RecipientDelivery.Status.DEFERRED, at, detail=detail)
        return "deferred", False
    if etype == EventType.BOUNCED and kind == SOFT:
        return _soft_bounce(recipient, esp, at, detail), False
    if etype in (EventType.BOUNCED, EventType.REJECTED) and (
        etype == EventType.BOUNCED or event.reject_reason in ("bounced", "invalid")
    ):
        _set_status(_delivery(recipient, esp), RecipientDelivery.Status.BOUNCED, at, bounced_at=at, detail=detail)
        suppression_add(email=recipient.email, reason=Suppression.Reason.HARD_BOUNCE, detail=detail, esp=esp)
        recipient_event_emit(event_type="recipient.bounced", recipient=recipient, bounce="hard", detail=detail)
        return "hard bounce: address suppressed", False
    if etype == EventType.REJECTED:  # the provider refused to send (its own block list, a policy)
        _set_status(_delivery(recipient, esp), RecipientDelivery.Status.REJECTED, at, detail=detail)
        return f"rejected by the provider ({event.reject_reason or 'other'})", False
    if etype == EventType.COMPLAINED:
        _set_status(_delivery(recipient, esp), RecipientDelivery.Status.COMPLAINED, at, complained_at=at)
        suppression_add(email=recipient.email, reason=Suppression.Reason.COMPLAINT, detail=detail, esp=esp)
        recipient_unsubscribe(recipient=recipient, at=at)
        feedback_create(customer=recipient.customer, kind=Feedback.Kind.COMPLAINT, source=Feedback.Source.EMAIL,
                        comment=f"Spam complaint reported by {esp}.", campaign_recipient_id=recipient.pk)
        recipient_event_emit(event_type="recipient.complained", recipient=recipient)
        return "complaint: address suppressed, consent withdrawn", False
    if etype == EventType.UNSUBSCRIBED:
        recipient_unsubscribe(recipient=recipient, at=at)  # emits recipient.unsubscribed
        return "unsubscribed", False
    if etype == EventType.OPENED:
        if open_is_machine(event, recipient):
            machine_open_record(recipient_id=recipient.pk, at=at)
            return "machine open: not counted", True
        recipient_open(recipient_id=recipient.pk, at=at)
        return "opened", False
    if etype == EventType.CLICKED:
        item_id = _clicked_item(recipient, event.click_url or "")
        if item_id is None:
            return "click on a link that is not an item", False
        recipient_click(recipient=recipient, item_id=item_id, user_agent=event.user_agent or "", at=at)
        return f"click on item {item_id}", False
    return f"{etype}: recorded", False


def _soft_bounce(recipient: Recipient, esp: str, at: datetime, detail: str) -> str:
    """Re-send later while attempts remain; then the recipient fails (the address is not suppressed)."""
    conf = campaigns_settings()
    delivery = _delivery(recipient, esp)
    _set_status(delivery, RecipientDelivery.Status.SOFT_BOUNCED, at, soft_bounces=F("soft_bounces") + 1, detail=detail)
    if recipient.attempts <= conf.SOFT_BOUNCE_MAX_RETRIES:
        moved = Recipient.objects.filter(pk=recipient.pk, state=Recipient.State.SENT).update(
            state=Recipient.State.PENDING, error=f"soft bounce, re-sending: {detail}"[:2000],
        )
        if moved:
            from crm.jobs import enqueue

            countdown = conf.SOFT_BOUNCE_RETRY_SECONDS
            transaction.on_commit(lambda: enqueue("campaigns.recipient_resend", recipient.pk, countdown=countdown))
            return f"soft bounce: re-send {recipient.attempts} of {conf.SOFT_BOUNCE_MAX_RETRIES} queued"
        return "soft bounce"
    Recipient.objects.filter(pk=recipient.pk, state=Recipient.State.SENT).update(
        state=Recipient.State.FAILED, failed_at=at, error=f"soft bounces: gave up after {recipient.attempts} sends",
    )
    return "soft bounce: gave up"


def _clicked_item(recipient: Recipient, url: str) -> int | None:
    """The item behind a provider-tracked click: our own click link, or the item's own URL."""
    if not url:
        return None
    try:
        match = resolve(urlsplit(url).path)
    except Resolver404:
        match = None
    if match is not None and match.view_name == "campaigns-tracking:click":
        payload = token_load(salt=CLICK_SALT, token=match.kwargs.get("token", ""))
        if payload and len(payload) == 2 and payload[0] == recipient.pk:
            return payload[1]
        return None
    return next((e["item_id"] for e in recipient.items if e.get("url") and e.get("url") == url), None)


def recipient_resend(*, recipient_id: int) -> str:
    """Send a soft-bounced recipient again (consent, caps and suppression are checked again)."""
    from campaigns.services.send import recipient_batch_send

    result = recipient_batch_send(recipient_ids=[recipient_id], resend=True)
    return "sent" if result.sent else "not sent"


def deliverability_counts(*, campaign_id: int, run: int) -> dict[str, int]:
    """Delivered / bounced / complained / machine opens of a run (for results and the admin)."""
    qs = RecipientDelivery.objects.filter(recipient__campaign_id=campaign_id, recipient__run=run)
    counts = {status: 0 for status, _ in RecipientDelivery.Status.choices}
    for status in qs.values_list("status", flat=True):
        counts[status] += 1
    counts["machine_opens"] = qs.filter(machine_opened_at__isnull=False).count()
    return counts

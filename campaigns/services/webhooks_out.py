"""Outbound webhooks: signed events POSTed to integrations, at least once, with backoff and a dead letter.

An event (``webhook_event_emit``) becomes one ``WebhookDelivery`` per active subscription to its
type; ``(subscription, dedupe_key)`` is unique, so emitting the same fact twice (a replayed
provider webhook, a rerun) queues it once. Each delivery carries a stable ``Tailored-Event-Id``
(the idempotency key: a receiver that sees it twice must ignore the second), and a signature::

    Tailored-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

A 2xx answer marks it delivered. Anything else (an error status, a timeout, a refused connection)
is retried after ``WEBHOOK_BACKOFF_SECONDS * 2**(attempt-1)`` (capped), until
``WEBHOOK_MAX_ATTEMPTS``; then it is dead-lettered (the admin can requeue it). Every attempt is
logged with its response code.

SSRF: subscriptions are created by staff or API keys with the webhooks scope, and the URL must be
http(s). The worker does not follow redirects. Private and loopback addresses are not refused (an
integration may run next to Tailored); in a deployment where that matters, route the workers'
egress through a proxy that blocks internal networks.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from campaigns.conf import campaigns_settings
from campaigns.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Tailored-Signature"
EVENT_ID_HEADER = "Tailored-Event-Id"
EVENT_TYPE_HEADER = "Tailored-Event-Type"
BAD_URL = "The webhook URL must be an absolute http:// or https:// URL; got {value!r}."
BAD_EVENT_TYPES = "Unknown event type(s): {value}. Known: {known}."
EVENT_TYPES = [choice for choice, _ in WebhookSubscription.EventType.choices]


def webhook_url_validate(url: str) -> str:
    """Refuse anything but absolute http(s) URLs (no file:, gopher:, javascript:, credentials)."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise ValueError(BAD_URL.format(value=url))
    return url


def webhook_event_types_validate(event_types: Any) -> list[str]:
    if not isinstance(event_types, list) or not event_types or not all(isinstance(t, str) for t in event_types):
        raise ValueError("event_types must be a non-empty list of strings.")
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(BAD_EVENT_TYPES.format(value=", ".join(unknown), known=", ".join(EVENT_TYPES)))
    return sorted(set(event_types))


def webhook_subscription_create(*, name: str, url: str, secret: str, event_types: list[str],
                                active: bool = True) -> WebhookSubscription:
    if not secret or len(secret) < 16:
        raise ValueError("The secret must be at least 16 characters.")
    return WebhookSubscription.objects.create(
        name=name, url=webhook_url_validate(url), secret=secret,
        event_types=webhook_event_types_validate(event_types), active=active,
    )


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_signature_verify(*, secret: str, header: str, body: bytes, tolerance_seconds: int = 300,
                             now: float | None = None) -> bool:
    """What a receiver does (docs/api.md shows the same in a standalone snippet)."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance_seconds:
        return False
    expected = webhook_signature(secret=secret, timestamp=timestamp, body=body)
    return hmac.compare_digest(expected, f"t={timestamp},v1={fields.get('v1', '')}")


def webhook_event_emit(*, event_type: str, dedupe_key: str, data: dict[str, Any]) -> list[int]:
    """Queue ``data`` for every active subscription to ``event_type``; returns the new delivery ids.

    Sent by Celery after the surrounding transaction commits.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(BAD_EVENT_TYPES.format(value=event_type, known=", ".join(EVENT_TYPES)))
    created = []
    for subscription in WebhookSubscription.objects.filter(active=True):  # few rows: filter types here
        if event_type not in subscription.event_types:
            continue
        delivery = WebhookDelivery(subscription=subscription, event_type=event_type, dedupe_key=dedupe_key[:255])
        delivery.payload = _envelope(delivery, data)
        try:
            with transaction.atomic():
                delivery.save()
        except IntegrityError:
            continue  # this fact was already queued for this subscription
        created.append(delivery.pk)
    if created:
        from crm.jobs import enqueue

        for pk in created:
            transaction.on_commit(lambda pk=pk: enqueue("campaigns.webhook_deliver", pk))
    return created


def _envelope(delivery: WebhookDelivery, data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps({
        "id": str(delivery.event_id), "type": delivery.event_type,
        "created_at": timezone.now().isoformat(), "data": data,
    }, cls=DjangoJSONEncoder))


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int | None, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, repr(exc)[:2000]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect is an answer, not a place to go
        return None


def backoff_seconds(attempt: int) -> float:
    conf = campaigns_settings()
    return min(conf.WEBHOOK_BACKOFF_SECONDS * 2 ** max(attempt - 1, 0), conf.WEBHOOK_BACKOFF_MAX_SECONDS)


def webhook_deliver(*, delivery_id: int, now: datetime | None = None) -> WebhookDelivery | None:
    """One attempt. Returns the delivery (its status says what happened), or None if nothing to do.

    The attempt is claimed with a conditional update, so two workers never POST the same attempt.
    """
    conf = campaigns_settings()
    now = now or timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).update(attempts=F("attempts") + 1, next_attempt_at=now + timedelta(seconds=conf.WEBHOOK_TIMEOUT_SECONDS * 3))
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    subscription = delivery.subscription
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json", "User-Agent": "Tailored-Webhooks/1",
        SIGNATURE_HEADER: webhook_signature(secret=subscription.secret, timestamp=int(time.time()), body=body),
        EVENT_ID_HEADER: str(delivery.event_id), EVENT_TYPE_HEADER: delivery.event_type,
    }
    started = time.monotonic()
    if subscription.active:
        code, error = _post(subscription.url, body, headers, conf.WEBHOOK_TIMEOUT_SECONDS)
    else:
        code, error = None, "subscription inactive"
    WebhookAttempt.objects.create(
        delivery=delivery, attempted_at=now, status_code=code, error=error,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    update: dict[str, Any] = {"last_status_code": code, "last_error": error}
    if code is not None and 200 <= code < 300:
        update.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=timezone.now(), last_error="")
    elif delivery.attempts >= conf.WEBHOOK_MAX_ATTEMPTS:
        update.update(status=WebhookDelivery.Status.DEAD)
    else:
        update.update(next_attempt_at=now + timedelta(seconds=backoff_seconds(delivery.attempts)))
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**update)
    delivery.refresh_from_db()
    return delivery


def webhook_deliveries_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Pending deliveries whose next attempt is due (the beat task retries them)."""
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )


def webhook_delivery_requeue(*, delivery_ids: list[int]) -> int:
    """Dead letters back to pending (an operator fixed the receiver); attempts start again."""
    return WebhookDelivery.objects.filter(pk__in=delivery_ids).filter(
        Q(status=WebhookDelivery.Status.DEAD) | Q(status=WebhookDelivery.Status.PENDING)
    ).update(status=WebhookDelivery.Status.PENDING, attempts=0, next_attempt_at=timezone.now())


# --- the events ---------------------------------------------------------------------------------

def webhook_event_wanted(event_type: str) -> bool:
    """Skip building payloads nobody subscribed to (the table holds a handful of rows)."""
    return any(event_type in s.event_types for s in WebhookSubscription.objects.filter(active=True).only("event_types"))


def campaign_sent_emit(*, campaign) -> list[int]:
    from campaigns.services.send import campaign_send_report

    if not webhook_event_wanted("campaign.sent"):
        return []
    report = campaign_send_report(campaign=campaign)
    return webhook_event_emit(
        event_type="campaign.sent", dedupe_key=f"campaign-sent:{campaign.pk}:{report.run}",
        data={"campaign_id": campaign.pk, "name": campaign.name, "run": report.run, "sent": report.sent,
              "failed": report.failed, "skipped": report.skipped, "in_doubt": report.in_doubt},
    )


def conversions_emit(*, recipient_ids: list[int]) -> int:
    """One ``conversion.attributed`` per recipient, the first time a purchase is attributed to it."""
    from campaigns.models import Recipient

    if not webhook_event_wanted("conversion.attributed"):
        return 0
    emitted = 0
    for recipient in Recipient.objects.filter(pk__in=recipient_ids).select_related("customer"):
        emitted += bool(webhook_event_emit(
            event_type="conversion.attributed", dedupe_key=f"conversion:{recipient.pk}",
            data={"campaign_id": recipient.campaign_id, "run": recipient.run, "recipient_id": recipient.pk,
                  "customer_id": recipient.customer_id, "customer_external_id": recipient.customer.external_id,
                  "converted_at": recipient.converted_at, "revenue": str(recipient.revenue)},
        ))
    return emitted


def recommendations_refreshed_emit(*, version_id: int, customer_ids: list[int] | None = None,
                                   chunk: int = 1000) -> int:
    """One ``recommendations.refreshed`` per customer whose served list changed (top items included)."""
    from recommendations.models import Recommendation

    if not webhook_event_wanted("recommendations.refreshed"):
        return 0
    rows = Recommendation.objects.filter(model_version_id=version_id)
    if customer_ids is not None:
        rows = rows.filter(customer_id__in=customer_ids)
    ids = sorted(set(rows.values_list("customer_id", flat=True)))
    emitted = 0
    for start in range(0, len(ids), chunk):
        part = ids[start:start + chunk]
        lists: dict[int, list] = {}
        for customer_id, external_id, sku, rank in rows.filter(customer_id__in=part).order_by(
            "customer_id", "rank"
        ).values_list("customer_id", "customer__external_id", "item__sku", "rank"):
            lists.setdefault(customer_id, [external_id, []])[1].append({"rank": rank, "sku": sku})
        for customer_id, (external_id, items) in lists.items():
            emitted += bool(webhook_event_emit(
                event_type="recommendations.refreshed", dedupe_key=f"recs:{version_id}:{customer_id}",
                data={"customer_id": customer_id, "customer_external_id": external_id,
                      "model_version_id": version_id, "items": items},
            ))
    return emitted


def recipient_event_emit(*, event_type: str, recipient, **extra) -> list[int]:
    """``recipient.bounced`` / ``.complained`` / ``.unsubscribed``: once per recipient and type."""
    if not webhook_event_wanted(event_type):
        return []
    return webhook_event_emit(
        event_type=event_type, dedupe_key=f"{event_type}:{recipient.pk}",
        data={"campaign_id": recipient.campaign_id, "run": recipient.run, "recipient_id": recipient.pk,
              "customer_id": recipient.customer_id, "customer_external_id": recipient.customer.external_id,
              "email": recipient.email, **extra},
    )

"""E-mail consent changes: explicit actions only, each recorded as a ``ConsentEvent``.

Profile updates (API PUT/PATCH, bulk upserts of existing customers) cannot touch ``email_opt_in``
or ``unsubscribed_at``; the consent endpoint (``POST /api/v1/customers/{id}/consent``), the admin
actions and the unsubscribe link call ``customer_consent_record``, which changes the customer and
writes who, when, how and where in one transaction.
"""
from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from .models import ConsentEvent, Customer

Action = ConsentEvent.Action
Channel = ConsentEvent.Channel
CONSENT_FIELDS = ("email_opt_in", "unsubscribed_at")
USE_CONSENT_ENDPOINT = (
    "Consent cannot be changed by a profile update; POST {{\"action\": \"opt_in\"|\"opt_out\", \"source\": ...}} "
    "to /api/v1/customers/{{external_id}}/consent so the change is recorded."
)


@transaction.atomic
def customer_consent_record(
    *, customer: Customer, action: str, channel: str, source: str, actor: str, at: datetime | None = None
) -> ConsentEvent:
    """Opt a customer in or out and record it. Opt-out also sets ``unsubscribed_at``; opt-in clears it."""
    if action not in Action.values:
        raise ValueError(f"Unknown consent action {action!r}.")
    now = at or timezone.now()
    if action == Action.OPT_IN:
        fields = {"email_opt_in": True, "unsubscribed_at": None, "consent_updated_at": now}
    else:
        fields = {"email_opt_in": False, "unsubscribed_at": customer.unsubscribed_at or now, "consent_updated_at": now}
    Customer.objects.filter(pk=customer.pk).update(**fields)
    for name, value in fields.items():
        setattr(customer, name, value)
    return ConsentEvent.objects.create(
        customer=customer, action=action, channel=channel, source=source[:200], actor=actor[:200], created_at=now
    )


def consent_events_for_new_customers(*, customers: list[Customer], channel: str, actor: str) -> None:
    """Record the consent state new customers were created with (opt-in or already unsubscribed)."""
    events = []
    for customer in customers:
        if customer.unsubscribed_at is not None:
            action = Action.OPT_OUT
        elif customer.email_opt_in:
            action = Action.OPT_IN
        else:
            continue
        events.append(ConsentEvent(customer=customer, action=action, channel=channel,
                                   source="given when the customer was created", actor=actor[:200]))
    ConsentEvent.objects.bulk_create(events, batch_size=1000)

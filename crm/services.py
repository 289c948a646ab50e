"""Write-side operations of the CRM core."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Customer, Feedback, Interaction, Item
from .signals import customer_erasing, feedback_recorded


def interaction_record(
    *,
    customer: Customer,
    item: Item,
    kind: str,
    event_id: str,
    occurred_at: datetime | None = None,
    value: float | None = None,
    quantity: int = 1,
    source: str = Interaction.Source.WEB,
    excluded_from_training: bool = False,
) -> tuple[Interaction, bool]:
    """Store one event; replaying an ``event_id`` returns the stored event and ``created=False``."""
    existing = Interaction.objects.filter(event_id=event_id).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            interaction = Interaction.objects.create(
                customer=customer,
                item=item,
                kind=kind,
                event_id=event_id,
                occurred_at=occurred_at or timezone.now(),
                value=value,
                quantity=quantity,
                source=source,
                excluded_from_training=excluded_from_training,
            )
    except IntegrityError:  # a concurrent replay won the race
        return Interaction.objects.get(event_id=event_id), False
    return interaction, True


def feedback_create(
    *,
    customer: Customer,
    kind: str,
    item: Item | None = None,
    comment: str = "",
    source: str = Feedback.Source.API,
    campaign_recipient_id: int | None = None,
) -> Feedback:
    feedback = Feedback.objects.create(
        customer=customer,
        item=item,
        kind=kind,
        comment=comment,
        source=source,
        campaign_recipient_id=campaign_recipient_id,
    )
    transaction.on_commit(lambda: feedback_recorded.send(sender=Feedback, feedback=feedback))
    return feedback


def customer_unsubscribe(*, customer: Customer, at: datetime | None = None) -> bool:
    """Withdraw e-mail consent. Returns False when the customer was already unsubscribed."""
    if customer.unsubscribed_at is not None:
        return False
    now = at or timezone.now()
    Customer.objects.filter(pk=customer.pk).update(
        unsubscribed_at=now, email_opt_in=False, consent_updated_at=now
    )
    customer.refresh_from_db()
    return True


def customer_export(*, customer: Customer) -> dict[str, Any]:
    """Everything stored about a customer, for a data-subject access request."""
    return {
        "customer": {
            "external_id": customer.external_id,
            "email": customer.email,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "country": customer.country,
            "attributes": customer.attributes,
            "email_opt_in": customer.email_opt_in,
            "unsubscribed_at": customer.unsubscribed_at.isoformat() if customer.unsubscribed_at else None,
            "created_at": customer.created_at.isoformat(),
        },
        "interactions": [
            {
                "item": i.item.sku,
                "kind": i.kind,
                "value": i.value,
                "quantity": i.quantity,
                "occurred_at": i.occurred_at.isoformat(),
                "source": i.source,
                "event_id": i.event_id,
            }
            for i in customer.interactions.select_related("item").order_by("occurred_at", "id")
        ],
        "feedback": [
            {
                "item": f.item.sku if f.item else None,
                "kind": f.kind,
                "comment": f.comment,
                "created_at": f.created_at.isoformat(),
            }
            for f in customer.feedback.select_related("item").order_by("created_at", "id")
        ],
    }


@transaction.atomic
def customer_erase(*, customer: Customer) -> None:
    """Erase a customer's personal data (right to erasure): the row and everything hanging off it.

    Downstream apps delete or anonymise their own rows in a ``customer_erasing`` receiver.
    """
    customer_erasing.send(sender=Customer, customer=customer)
    customer.delete()

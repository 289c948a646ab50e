"""Answers to CRM signals (connected in CampaignsConfig.ready): export and feedback ownership."""
from __future__ import annotations

from typing import Any

from crm.models import Customer

from .models import Click, Recipient


def export_campaign_history(sender, customer: Customer, **kwargs) -> dict[str, Any]:
    """Every campaign message a customer was chosen for, with its tracking (clicks with user agents)."""
    recipients = (
        Recipient.objects.filter(customer=customer).select_related("campaign").order_by("created_at", "id")
    )
    clicks = Click.objects.filter(recipient__customer=customer).select_related("item").order_by("clicked_at", "id")
    return {
        "campaign_recipients": [
            {
                "id": r.pk, "campaign": r.campaign.name, "run": r.run, "email": r.email, "items": r.items,
                "state": r.state, "skip_reason": r.skip_reason, "is_holdout": r.is_holdout,
                "message_id": r.message_id,
                **{f: (getattr(r, f).isoformat() if getattr(r, f) else None) for f in (
                    "sent_at", "opened_at", "clicked_at", "converted_at", "unsubscribed_at", "created_at")},
                "revenue": str(r.revenue),
            }
            for r in recipients
        ],
        "campaign_clicks": [
            {
                "recipient": c.recipient_id, "item": c.item.sku, "clicked_at": c.clicked_at.isoformat(),
                "count": c.count, "user_agent": c.user_agent, "flagged": c.flagged, "flag_reason": c.flag_reason,
            }
            for c in clicks
        ],
    }


def recipient_owner(sender, recipient_id: int, **kwargs) -> int | None:
    return Recipient.objects.filter(pk=recipient_id).values_list("customer_id", flat=True).first()

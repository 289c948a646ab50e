"""Reactions to other apps' signals (connected in CampaignsConfig.ready)."""
from __future__ import annotations


def anymail_tracking_received(sender, event, esp_name: str, **kwargs) -> None:
    """A provider's delivery/tracking event, normalised by anymail."""
    from campaigns.services.deliverability import tracking_event_record

    tracking_event_record(event=event, esp_name=esp_name)


def recommendations_refreshed_received(sender, version, customer_ids=None, **kwargs) -> None:
    """A version started serving: tell subscribed integrations, from a task (it can be many customers)."""
    from campaigns.services.webhooks_out import webhook_event_wanted
    from campaigns.tasks import recommendations_refreshed_emit_task

    if webhook_event_wanted("recommendations.refreshed"):
        recommendations_refreshed_emit_task.delay(version.pk, customer_ids)

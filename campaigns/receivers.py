"""Reactions to other apps' signals (connected in CampaignsConfig.ready)."""
from __future__ import annotations


def anymail_tracking_received(sender, event, esp_name: str, **kwargs) -> None:
    """A provider's delivery/tracking event, normalised by anymail."""
    from campaigns.services.deliverability import tracking_event_record

    tracking_event_record(event=event, esp_name=esp_name)

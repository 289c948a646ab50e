"""Creating, updating and deleting campaigns (the definition, not its runs)."""
from __future__ import annotations

from typing import Any

from campaigns.models import Campaign
from campaigns.services.build import CampaignStateError

EDITABLE = (
    "name", "description", "audience", "channel", "subject_template", "html_template", "text_template", "n_items",
    "filter_category", "filter_min_price", "filter_max_price", "max_per_category", "holdout_share",
    "frequency_cap_count", "frequency_cap_days", "consent_required", "recommendation_list",
)
BUSY = (
    "Campaign {id} is {status}: it cannot be changed or deleted until that finishes; cancel it first "
    "(POST /api/v1/campaigns/{id}/cancel, the admin action or `manage.py campaign cancel {id}`)."
)


def campaign_create(**fields: Any) -> Campaign:
    campaign = Campaign(**{k: v for k, v in fields.items() if k in EDITABLE})
    campaign.full_clean()  # includes the templates: compiled and rendered on a sample message
    campaign.save()
    return campaign


def campaign_update(*, campaign: Campaign, data: dict[str, Any]) -> Campaign:
    if campaign.status in (Campaign.Status.BUILDING, Campaign.Status.SENDING):
        raise CampaignStateError(BUSY.format(id=campaign.pk, status=campaign.status))
    for key, value in data.items():
        if key in EDITABLE:
            setattr(campaign, key, value)
    campaign.full_clean()  # includes the templates: compiled and rendered on a sample message
    campaign.save()
    return campaign


def campaign_delete(*, campaign: Campaign) -> None:
    if campaign.status in (Campaign.Status.BUILDING, Campaign.Status.SENDING):
        raise CampaignStateError(BUSY.format(id=campaign.pk, status=campaign.status))
    if campaign.periodic_task_id:
        campaign.periodic_task.delete()
    campaign.delete()

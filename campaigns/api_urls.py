"""``/api/v1/`` routes of campaigns (no trailing slashes, like the rest of the API).

Each action on one campaign is ``campaigns/<pk>/<action>``, named ``campaign-<action>``.
"""
from django.urls import path

from . import apis, delivery_apis

app_name = "campaigns-api"

CAMPAIGN_ACTIONS = {
    "build": apis.CampaignBuildApi,
    "send": apis.CampaignSendApi,
    "schedule": apis.CampaignScheduleApi,
    "cancel": apis.CampaignCancelApi,
    "results": apis.CampaignResultsApi,
    "recipients": apis.CampaignRecipientListApi,
    "offers": apis.CampaignOffersApi,
    "schedule-local": delivery_apis.CampaignScheduleLocalApi,
}

urlpatterns = [
    path("campaigns", apis.CampaignListCreateApi.as_view(), name="campaigns"),
    path("campaigns/<int:pk>", apis.CampaignDetailApi.as_view(), name="campaign"),
    *(
        path(f"campaigns/<int:pk>/{action}", view.as_view(), name=f"campaign-{action}")
        for action, view in CAMPAIGN_ACTIONS.items()
    ),
    path("webhooks", delivery_apis.WebhookListCreateApi.as_view(), name="webhooks"),
    path("webhooks/<int:pk>", delivery_apis.WebhookDetailApi.as_view(), name="webhook"),
    path("webhooks/<int:pk>/deliveries", delivery_apis.WebhookDeliveryListApi.as_view(), name="webhook-deliveries"),
]

"""``/api/v1/`` routes of campaigns (no trailing slashes, like the rest of the API)."""
from django.urls import path

from . import apis

app_name = "campaigns-api"

urlpatterns = [
    path("campaigns", apis.CampaignListCreateApi.as_view(), name="campaigns"),
    path("campaigns/<int:pk>", apis.CampaignDetailApi.as_view(), name="campaign"),
    path("campaigns/<int:pk>/build", apis.CampaignBuildApi.as_view(), name="campaign-build"),
    path("campaigns/<int:pk>/send", apis.CampaignSendApi.as_view(), name="campaign-send"),
    path("campaigns/<int:pk>/schedule", apis.CampaignScheduleApi.as_view(), name="campaign-schedule"),
    path("campaigns/<int:pk>/cancel", apis.CampaignCancelApi.as_view(), name="campaign-cancel"),
    path("campaigns/<int:pk>/results", apis.CampaignResultsApi.as_view(), name="campaign-results"),
    path("campaigns/<int:pk>/recipients", apis.CampaignRecipientListApi.as_view(), name="campaign-recipients"),
    path("campaigns/<int:pk>/offers", apis.CampaignOffersApi.as_view(), name="campaign-offers"),
]

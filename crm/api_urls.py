"""``/api/v1/`` routes of the CRM core (no trailing slashes; lookups are external_id and sku).

Detail routes use the ``path`` converter so that ids created before ``/`` was refused (imports,
old API versions) can still be read and erased. ``crm/urls.py`` includes these routes after the
other apps' ``customers/<id>/...`` and ``items/<sku>/...`` routes, which therefore match first.
"""
from django.urls import path

from . import apis

app_name = "crm-api"

urlpatterns = [
    path("customers", apis.CustomerListCreateApi.as_view(), name="customers"),
    path("customers/bulk", apis.CustomerBulkUpsertApi.as_view(), name="customers-bulk"),
    path("customers/<path:external_id>/consent", apis.CustomerConsentApi.as_view(), name="customer-consent"),
    path("customers/<path:external_id>", apis.CustomerDetailApi.as_view(), name="customer"),
    path("items", apis.ItemListCreateApi.as_view(), name="items"),
    path("items/bulk", apis.ItemBulkUpsertApi.as_view(), name="items-bulk"),
    path("items/<path:sku>", apis.ItemDetailApi.as_view(), name="item"),
    path("interactions", apis.InteractionListApi.as_view(), name="interactions"),
    path("interactions/bulk", apis.InteractionBulkCreateApi.as_view(), name="interactions-bulk"),
    path("feedback", apis.FeedbackListCreateApi.as_view(), name="feedback"),
    path("feedback/<int:pk>", apis.FeedbackDetailApi.as_view(), name="feedback-detail"),
]

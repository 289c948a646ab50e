from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

admin.site.site_header = "Tailored"
admin.site.site_title = "Tailored CRM"
admin.site.index_title = "Customers, catalogue, recommendations and campaigns"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's init script as a file: no inline script under the CSP.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # crm last: its customers/<path:id> and items/<path:sku> would swallow the others' sub-routes.
    path("api/v1/", include("recommendations.api_urls")),
    path("api/v1/", include("campaigns.api_urls")),
    path("api/v1/", include("crm.api_urls")),
    path("t/", include("campaigns.tracking_urls")),
    path("", include("crm.site_urls")),
]

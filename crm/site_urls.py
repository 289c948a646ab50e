from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """Browsers ask for /favicon.ico on every page (the API docs too): answer instead of logging a 404."""
    return HttpResponsePermanentRedirect(static("crm/favicon.svg"))


urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False), name="home"),
    path("favicon.ico", favicon, name="favicon"),
]

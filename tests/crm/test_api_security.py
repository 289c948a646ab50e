"""Attacks from the security review, replayed against the API: each must end in a 4xx in the one error shape."""
import pytest
from django.test import override_settings
from django.urls import path
from rest_framework.test import APIClient
from rest_framework.views import APIView

from crm import api_urls
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


# --- finding 3: deeply nested JSON, and 500s -------------------------------------------------------

@pytest.mark.parametrize("url", ["/api/v1/customers", "/api/v1/customers/bulk", "/api/v1/interactions/bulk",
                                 "/api/v1/feedback", "/api/v1/items"])
def test_deeply_nested_json_is_a_400_not_a_500(writer, url):
    """``[`` x 100,000 used to raise RecursionError inside the parser: a 500 with a debug page."""
    body = "[" * 100_000 + "]" * 100_000
    body_ = assert_error(writer.post(url, body, content_type="application/json"), 400, "parse_error")
    assert "nested" in body_["detail"]


def test_json_nested_past_the_depth_limit_is_refused(writer):
    """Parsable but absurd nesting (here 40 levels) never reaches a serializer or a JSON column."""
    attributes = {}
    for _ in range(40):
        attributes = {"a": attributes}
    response = writer.post("/api/v1/customers", {"external_id": "deep", "attributes": attributes}, format="json")
    body = assert_error(response, 400, "parse_error")
    assert "nested more than 32 levels" in body["detail"]


class _BrokenApi(APIView):
    required_scope = "read"

    def get(self, request):
        raise ZeroDivisionError("a bug")


@override_settings(DEBUG=True, ROOT_URLCONF="tests.crm.test_api_security")
def test_a_bug_under_api_is_a_json_500_even_with_debug(reader):
    """No HTML debug page (settings, traceback) ever goes to an API client."""
    reader.raise_request_exception = False
    response = reader.get("/api/v1/broken")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"error": "server_error", "detail": "Internal server error; it has been logged.",
                               "fields": {}}


urlpatterns = [path("api/v1/broken", _BrokenApi.as_view()), *[p for p in api_urls.urlpatterns]]


# --- finding 7: failed API-key attempts are throttled per IP, before authentication --------------

@override_settings(API_AUTH_FAILURE_LIMIT=5, API_AUTH_FAILURE_WINDOW=600)
def test_guessing_keys_is_throttled_per_ip_before_authentication(writer, django_assert_max_num_queries):
    """Unlimited guesses used to be answered 401 forever (throttling ran after authentication)."""
    guesser = APIClient(REMOTE_ADDR="203.0.113.7")
    for n in range(5):
        guesser.credentials(HTTP_AUTHORIZATION=f"Bearer guess-{n}")
        assert_error(guesser.get("/api/v1/customers"), 401)
    guesser.credentials(HTTP_AUTHORIZATION="Bearer guess-6")
    with django_assert_max_num_queries(0):  # refused before any key is looked up
        body = assert_error(guesser.get("/api/v1/customers"), 429, "throttled")
    assert "invalid API key" in body["detail"]
    # even the right key is refused from that address until the window ends...
    guesser.credentials(HTTP_AUTHORIZATION=f"Bearer {writer.raw_key}")
    assert_error(guesser.get("/api/v1/customers"), 429)
    # ...while other addresses are unaffected
    writer.defaults["REMOTE_ADDR"] = "198.51.100.1"
    assert writer.get("/api/v1/customers").status_code == 200


@override_settings(API_AUTH_FAILURE_LIMIT=3)
def test_missing_keys_count_as_failures_too():
    anonymous = APIClient(REMOTE_ADDR="203.0.113.8")
    for _ in range(3):
        assert_error(anonymous.get("/api/v1/items"), 401)
    assert_error(anonymous.get("/api/v1/items"), 429, "throttled")

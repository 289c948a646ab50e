"""One error shape for every 4xx; 413 for big bodies; the OpenAPI schema and Swagger UI."""
import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_unknown_api_url_is_a_json_404(reader):
    assert_error(reader.get("/api/v1/nope"), 404, "not_found")
    assert_error(reader.get("/api/v2/customers"), 404, "not_found")


def test_wrong_method_is_405(writer):
    assert_error(writer.delete("/api/v1/customers"), 405, "method_not_allowed")
    assert_error(writer.get("/api/v1/customers/bulk"), 405)


def test_unsupported_media_type_is_415(writer):
    assert_error(writer.post("/api/v1/customers", "external_id=x", content_type="application/x-www-form-urlencoded"),
                 415, "unsupported_media_type")


@override_settings(API_MAX_BODY_BYTES=1000)
def test_oversized_body_is_413_before_reading_it(writer):
    body = {"customers": [{"external_id": f"c{i}"} for i in range(100)]}
    assert_error(writer.post("/api/v1/customers/bulk", body, format="json"), 413, "payload_too_large")


def test_schema_and_docs_for_staff(staff_client):
    schema = staff_client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/interactions/bulk" in schema.content and b"ApiKeyAuth" in schema.content
    docs = staff_client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content
    assert b"drf_spectacular_sidecar" in docs.content  # served offline


def test_schema_with_an_api_key_but_not_anonymously(reader):
    assert reader.get("/api/schema/?format=json").status_code == 200
    anonymous = APIClient().get("/api/schema/")
    assert anonymous.status_code == 401 and b"not_authenticated" in anonymous.content  # rendered as YAML


def test_schema_generates_without_warnings():
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    SchemaGenerator().get_schema(request=None, public=True)
    problems = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    assert not problems, problems

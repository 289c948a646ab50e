"""API keys, scopes, staff sessions, throttling."""
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings
from rest_framework.test import APIClient

from crm.api.authentication import api_key_hash
from crm.api.permissions import MISSING_SCOPE
from crm.models import ApiKey
from crm.services import api_key_create
from tests.conftest import assert_error
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_no_key_is_401_with_error_shape():
    response = APIClient().get("/api/v1/customers")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer", "Bearer a b", "Bearer \u00e9t\u00e9"])
def test_bad_keys_are_401(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_error(client.get("/api/v1/customers"), 401, "authentication_failed")


def test_revoked_key_is_401(reader):
    ApiKey.objects.update(is_active=False)
    assert_error(reader.get("/api/v1/customers"), 401)


def test_only_the_hash_is_stored_and_last_use_recorded(reader):
    key = ApiKey.objects.get()
    assert key.hashed_key == api_key_hash(reader.raw_key) and reader.raw_key not in str(key.__dict__)
    assert key.prefix == reader.raw_key[:8]
    reader.get("/api/v1/customers")
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_read_scope_cannot_write(reader):
    body = assert_error(reader.post("/api/v1/customers", {"external_id": "c1"}, format="json"), 403)
    assert body["detail"] == MISSING_SCOPE.format(scope="write")


def test_write_scope_cannot_run_model_operations(writer):
    body = assert_error(writer.get("/api/v1/model-versions"), 403, "permission_denied")
    assert body["detail"] == MISSING_SCOPE.format(scope="admin")


def test_write_only_key_cannot_read(make_client):
    client = make_client("write")
    assert_error(client.get("/api/v1/customers"), 403)
    assert client.post("/api/v1/customers", {"external_id": "c1"}, format="json").status_code == 201


def test_admin_scope_implies_read_and_write(admin_client_key):
    assert admin_client_key.get("/api/v1/customers").status_code == 200
    assert admin_client_key.post("/api/v1/customers", {"external_id": "c1"}, format="json").status_code == 201
    assert admin_client_key.get("/api/v1/model-versions").status_code == 200


def test_staff_session_may_do_everything(staff_client):
    CustomerFactory(external_id="c1")
    assert staff_client.get("/api/v1/customers/c1").status_code == 200
    assert staff_client.get("/api/v1/model-versions").status_code == 200


def test_non_staff_session_is_refused(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("u", password="pw"))
    assert_error(client.get("/api/v1/customers"), 403)


@override_settings(API_THROTTLE_RATES={"api": "2/minute", "bulk": "100/minute"})
def test_throttled_per_key_with_429(make_client):
    first, second = make_client("read"), make_client("read")
    assert first.get("/api/v1/customers").status_code == 200
    assert first.get("/api/v1/customers").status_code == 200
    body = assert_error(first.get("/api/v1/customers"), 429, "throttled")
    assert body["retry_after"] >= 1
    assert second.get("/api/v1/customers").status_code == 200  # counted per key


def test_create_api_key_command_prints_the_key_once():
    out = StringIO()
    call_command("create_api_key", "--name", "shop", "--scopes", "read,write", stdout=out, stderr=StringIO())
    raw_key = out.getvalue().strip()
    key = ApiKey.objects.get(name="shop")
    assert key.scopes == ["read", "write"] and key.hashed_key == api_key_hash(raw_key)


def test_create_api_key_command_rejects_unknown_scopes():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="Unknown scope"):
        call_command("create_api_key", "--name", "x", "--scopes", "read,root", stdout=StringIO())


def test_admin_creates_a_key_and_shows_it_once(staff_client):
    """The raw key is in the response body once, never in the messages cookie (it used to be a message)."""
    response = staff_client.post("/admin/crm/apikey/add/", {"name": "app", "scopes": ["read"], "is_active": "on"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    raw_key = response.context["raw_key"]
    assert f'class="raw-api-key">{raw_key}</code>' in response.content.decode()
    assert raw_key not in response.cookies.output()
    assert not list(response.context["messages"])
    key = ApiKey.objects.get(name="app")
    assert key.hashed_key == api_key_hash(raw_key) and key.created_by.username == "admin"
    listing = staff_client.get("/admin/crm/apikey/").content.decode()
    assert raw_key not in listing and key.prefix in listing


def test_service_refuses_a_key_without_scopes():
    with pytest.raises(ValueError, match="at least one scope"):
        api_key_create(name="x", scopes=[])

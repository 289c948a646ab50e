"""Consent changes only through explicit, recorded actions (security review, finding 8)."""
import pytest

from crm.consent import USE_CONSENT_ENDPOINT
from crm.models import ConsentEvent, Customer
from tests.conftest import assert_error
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("method", ["patch", "put"])
@pytest.mark.parametrize("change", [{"unsubscribed_at": None, "email_opt_in": True}, {"email_opt_in": True},
                                    {"unsubscribed_at": None}])
def test_profile_update_cannot_resubscribe(writer, method, change):
    """PATCH {unsubscribed_at: null, email_opt_in: true} used to silently re-subscribe, with no record."""
    customer = CustomerFactory(email_opt_in=False)
    Customer.objects.filter(pk=customer.pk).update(unsubscribed_at="2024-01-01T00:00:00Z")
    response = getattr(writer, method)(f"/api/v1/customers/{customer.external_id}", change, format="json")
    body = assert_error(response, 400, "invalid")
    assert body["detail"] == USE_CONSENT_ENDPOINT
    assert set(body["fields"]) == set(change)
    customer.refresh_from_db()
    assert customer.unsubscribed_at is not None and not customer.email_opt_in
    assert not ConsentEvent.objects.exists()


def test_consent_endpoint_records_who_when_how(writer):
    customer = CustomerFactory(email_opt_in=False)
    response = writer.post(f"/api/v1/customers/{customer.external_id}/consent",
                           {"action": "opt_in", "source": "newsletter form on the shop"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["action"] == "opt_in" and body["channel"] == "api" and body["source"] == "newsletter form on the shop"
    assert body["actor"].startswith(f"API key {writer.raw_key[:8]}")
    customer.refresh_from_db()
    assert customer.email_opt_in and customer.unsubscribed_at is None and customer.consent_updated_at
    # opting out is recorded the same way and stops e-mail
    writer.post(f"/api/v1/customers/{customer.external_id}/consent",
                {"action": "opt_out", "source": "phone call"}, format="json")
    customer.refresh_from_db()
    assert not customer.is_contactable
    assert list(customer.consent_events.order_by("id").values_list("action", flat=True)) == ["opt_in", "opt_out"]


def test_consent_endpoint_needs_a_source_and_a_known_action(writer, reader):
    customer = CustomerFactory()
    url = f"/api/v1/customers/{customer.external_id}/consent"
    assert set(assert_error(writer.post(url, {"action": "opt_in"}, format="json"), 400)["fields"]) == {"source"}
    assert set(assert_error(writer.post(url, {"action": "maybe", "source": "x"}, format="json"), 400)["fields"]) == {
        "action"}
    assert_error(reader.post(url, {"action": "opt_in", "source": "x"}, format="json"), 403)
    assert_error(writer.post("/api/v1/customers/nobody/consent", {"action": "opt_in", "source": "x"},
                             format="json"), 404)


def test_creating_a_customer_with_opt_in_records_it(writer):
    response = writer.post("/api/v1/customers", {"external_id": "new-1", "email": "n@example.com",
                                                  "email_opt_in": True}, format="json")
    assert response.status_code == 201
    event = ConsentEvent.objects.get(customer__external_id="new-1")
    assert (event.action, event.channel) == ("opt_in", "api")


def test_bulk_upsert_cannot_flip_consent_of_existing_customers(writer):
    customer = CustomerFactory(email_opt_in=False)
    rows = [{"external_id": customer.external_id, "email_opt_in": True}, {"external_id": "fresh", "email_opt_in": True}]
    body = assert_error(writer.post("/api/v1/customers/bulk", {"customers": rows}, format="json"), 400)
    assert customer.external_id in body["fields"]["customers"][0]
    customer.refresh_from_db()
    assert not customer.email_opt_in and not Customer.objects.filter(external_id="fresh").exists()
    # unchanged consent in a full re-sync is fine; new customers' opt-in is recorded
    rows[0]["email_opt_in"] = False
    assert writer.post("/api/v1/customers/bulk", {"customers": rows}, format="json").status_code == 200
    assert ConsentEvent.objects.get().customer.external_id == "fresh"


def test_admin_records_consent_with_the_staff_user(staff_client):
    customer = CustomerFactory(email_opt_in=False)
    url = "/admin/crm/customer/"
    form = {"action": "record_opt_in", "_selected_action": [customer.pk], "consent_source": "signed form in store"}
    staff_client.post(url, form)
    event = ConsentEvent.objects.get(customer=customer)
    assert (event.action, event.channel, event.source, event.actor) == (
        "opt_in", "admin", "signed form in store", "staff user admin")
    customer.refresh_from_db()
    assert customer.email_opt_in
    # without a source nothing is recorded
    staff_client.post(url, {**form, "action": "record_opt_out", "consent_source": ""})
    assert ConsentEvent.objects.count() == 1
    # and the change form no longer edits consent
    page = staff_client.get(f"/admin/crm/customer/{customer.pk}/change/").content.decode()
    assert 'name="email_opt_in"' not in page and "consent history" in page.lower()

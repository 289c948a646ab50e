"""Admin and API surfaces of deliverability: suppression lift with a note, webhooks, local schedule."""
from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from campaigns.models import SendWave, Suppression, WebhookDelivery, WebhookSubscription
from campaigns.services.deliverability import suppression_add
from campaigns.services.webhooks_out import webhook_deliver, webhook_event_emit, webhook_subscription_create
from crm.services import api_key_create
from tests.campaigns.webhook_receiver import WebhookReceiver

SUPPRESSIONS = "/admin/campaigns/suppression/"


@pytest.fixture
def suppressed(db):
    return suppression_add(email="Bounced@Example.com", reason=Suppression.Reason.HARD_BOUNCE,
                           detail="smtp; 550 5.1.1 <script>x</script>", esp="amazon_ses")[0]


def test_suppression_list_shows_reason_and_date(admin_client, suppressed):
    page = admin_client.get(SUPPRESSIONS).content.decode()
    assert "bounced@example.com" in page and "hard bounce" in page
    detail = admin_client.get(f"{SUPPRESSIONS}{suppressed.pk}/change/").content.decode()
    assert "<script>x</script>" not in detail and "&lt;script&gt;" in detail


def test_lift_action_asks_for_a_note_then_lifts(admin_client, suppressed):
    ask = admin_client.post(SUPPRESSIONS, {"action": "lift_action", ACTION_CHECKBOX_NAME: [suppressed.pk]})
    assert ask.status_code == 200 and b"Note (required)" in ask.content
    suppressed.refresh_from_db()
    assert suppressed.lifted_at is None
    no_note = admin_client.post(SUPPRESSIONS, {"action": "lift_action", ACTION_CHECKBOX_NAME: [suppressed.pk],
                                               "post": "yes", "note": "  "})
    assert b"A note is required" in no_note.content
    done = admin_client.post(SUPPRESSIONS, {"action": "lift_action", ACTION_CHECKBOX_NAME: [suppressed.pk],
                                            "post": "yes", "note": "Customer fixed the mailbox"})
    assert done.status_code == 302
    suppressed.refresh_from_db()
    assert suppressed.lifted_at is not None and suppressed.lift_note == "Customer fixed the mailbox"
    assert suppressed.lifted_by == "admin"
    assert not Suppression.objects.active().exists()


def test_webhook_subscription_admin_refuses_non_http_urls(admin_client, db):
    url = "/admin/campaigns/webhooksubscription/add/"
    data = {"name": "ERP", "url": "file:///etc/passwd", "secret": "s" * 20, "event_types": ["campaign.sent"],
            "active": "on"}
    assert admin_client.post(url, data).status_code == 200  # the form again, with the error
    assert not WebhookSubscription.objects.exists()
    data["url"] = "https://erp.example.com/hooks"
    assert admin_client.post(url, data).status_code == 302
    assert WebhookSubscription.objects.get().event_types == ["campaign.sent"]


def test_delivery_log_shows_response_codes_and_requeues_dead_letters(admin_client, db, settings):
    settings.CAMPAIGNS = {"WEBHOOK_MAX_ATTEMPTS": 1}
    with WebhookReceiver("s" * 20, always=500) as receiver:
        webhook_subscription_create(name="down", url=receiver.url, secret="s" * 20, event_types=["campaign.sent"])
        [pk] = webhook_event_emit(event_type="campaign.sent", dedupe_key="c:1", data={})
        assert webhook_deliver(delivery_id=pk).status == WebhookDelivery.Status.DEAD
        page = admin_client.get(f"/admin/campaigns/webhookdelivery/{pk}/change/").content.decode()
        assert "dead letter" in page and "HTTP 500" in page
        receiver.always = 0
        admin_client.post("/admin/campaigns/webhookdelivery/",
                          {"action": "requeue_action", ACTION_CHECKBOX_NAME: [pk]})
    delivery = WebhookDelivery.objects.get(pk=pk)
    assert [a.status_code for a in delivery.log.all()] == [500, 200]  # requeued and sent again (eager Celery)
    assert delivery.status == WebhookDelivery.Status.DELIVERED


def test_schedule_local_through_the_api_and_the_command(campaign, make_customers, settings):
    settings.CAMPAIGNS = {"DEFAULT_TIME_ZONE": "Europe/Berlin"}
    make_customers(1, country="JP")
    make_customers(1, country="US")
    _, raw = api_key_create(name="t", scopes=["read", "write"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    url = f"/api/v1/campaigns/{campaign.pk}/schedule-local"
    response = api.post(url, {"day": "2030-06-03", "local_time": "09:00"}, format="json")
    assert response.status_code == 200, response.content
    assert [w["send_at"] for w in response.json()["waves"]] == ["2030-06-03T00:00:00Z", "2030-06-03T13:00:00Z"]
    for bad in ({"day": "2030-06-03", "local_time": "25:00"}, {"day": "someday", "local_time": "09:00"},
                {"day": "2001-01-01", "local_time": "09:00"}):
        assert api.post(url, bad, format="json").status_code == 400
    out = StringIO()
    call_command("campaign", "schedule", str(campaign.pk), "--local", "2030-06-04 09:00", stdout=out)
    assert "2 wave(s)" in out.getvalue()
    assert SendWave.objects.filter(campaign=campaign).count() == 2
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("campaign", "schedule", str(campaign.pk), "--local", "tomorrow 9am")


def test_adding_a_suppression_by_hand_lowercases_and_refuses_a_duplicate(admin_client, suppressed):
    url = "/admin/campaigns/suppression/add/"
    duplicate = admin_client.post(url, {"email": "BOUNCED@example.com", "reason": "manual"})
    assert duplicate.status_code == 200 and b"errorlist" in duplicate.content
    assert admin_client.post(url, {"email": "not-an-address", "reason": "manual"}).status_code == 200
    assert admin_client.post(url, {"email": " New@Example.com ", "reason": "manual"}).status_code == 302
    assert Suppression.objects.active().filter(email="new@example.com").exists()
    assert Suppression.objects.count() == 2

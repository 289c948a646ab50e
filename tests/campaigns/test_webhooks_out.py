"""Outbound webhooks against a real HTTP receiver: signatures, backoff, dead letters, idempotency."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.models import Recipient, WebhookDelivery, WebhookSubscription
from campaigns.services.build import campaign_build
from campaigns.services.send import campaign_send
from campaigns.services.webhooks_out import (
    backoff_seconds,
    webhook_deliver,
    webhook_event_emit,
    webhook_signature,
    webhook_signature_verify,
    webhook_subscription_create,
)
from crm.services import api_key_create
from tests.campaigns.webhook_receiver import WebhookReceiver

SECRET = "whsec-0123456789abcdef"


@pytest.fixture
def fast(settings):
    settings.CAMPAIGNS = {"WEBHOOK_BACKOFF_SECONDS": 30, "WEBHOOK_MAX_ATTEMPTS": 5, "WEBHOOK_TIMEOUT_SECONDS": 2}


def subscribe(url: str, *types: str) -> WebhookSubscription:
    return webhook_subscription_create(name="crm sync", url=url, secret=SECRET,
                                       event_types=list(types) or ["recipient.bounced"])


def drive(delivery_id: int, *, max_attempts: int = 10) -> WebhookDelivery:
    """Run attempts as the scheduler would, each at its due time (the clock is passed in)."""
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    for _ in range(max_attempts):
        if delivery.status != WebhookDelivery.Status.PENDING:
            break
        webhook_deliver(delivery_id=delivery_id, now=delivery.next_attempt_at)
        delivery.refresh_from_db()
    return delivery


def test_fails_then_accepts_exactly_once_with_backoff_and_a_log(db, fast, django_capture_on_commit_callbacks):
    with WebhookReceiver(SECRET, fail_first=2) as receiver:
        subscribe(receiver.url)
        with django_capture_on_commit_callbacks(execute=True):  # the task's first attempt runs on commit
            [pk] = webhook_event_emit(event_type="recipient.bounced", dedupe_key="bounced:1", data={"recipient_id": 1})
        first = WebhookDelivery.objects.get(pk=pk)
        assert first.status == WebhookDelivery.Status.PENDING and first.attempts == 1
        assert first.last_status_code == 503
        delivery = drive(pk)
    assert delivery.status == WebhookDelivery.Status.DELIVERED and delivery.attempts == 3
    assert [a.status_code for a in delivery.log.all()] == [503, 503, 200]
    times = [a.attempted_at for a in delivery.log.all()]
    assert (times[1] - times[0]) == timedelta(seconds=30) and (times[2] - times[1]) == timedelta(seconds=60)
    assert all(r["verified"] for r in receiver.requests)
    assert list(receiver.accepted) == [str(delivery.event_id)]
    body = receiver.accepted[str(delivery.event_id)]
    assert body["type"] == "recipient.bounced" and body["data"] == {"recipient_id": 1}


def test_a_timed_out_accept_is_retried_with_the_same_event_id(db, settings):
    settings.CAMPAIGNS = {"WEBHOOK_BACKOFF_SECONDS": 1, "WEBHOOK_TIMEOUT_SECONDS": 0.3}
    with WebhookReceiver(SECRET, stall_first_accept=1.0) as receiver:
        subscribe(receiver.url)
        [pk] = webhook_event_emit(event_type="recipient.bounced", dedupe_key="bounced:2", data={})
        delivery = drive(pk)
    assert delivery.status == WebhookDelivery.Status.DELIVERED and delivery.attempts == 2
    assert delivery.log.first().status_code is None and "timed out" in delivery.log.first().error.lower()
    ids = {r["event_id"] for r in receiver.requests}
    assert len(receiver.requests) == 2 and ids == {str(delivery.event_id)}
    assert len(receiver.accepted) == 1  # at least once on the wire, once in the receiver


def test_gives_up_into_a_dead_letter_and_can_be_requeued(db, fast):
    from campaigns.services.webhooks_out import webhook_delivery_requeue

    with WebhookReceiver(SECRET, always=500) as receiver:
        subscribe(receiver.url)
        [pk] = webhook_event_emit(event_type="recipient.bounced", dedupe_key="bounced:3", data={})
        delivery = drive(pk)
        assert delivery.status == WebhookDelivery.Status.DEAD and delivery.attempts == 5
        assert webhook_deliver(delivery_id=pk) is None  # a dead letter is not retried by itself
        receiver.always = 0
        assert webhook_delivery_requeue(delivery_ids=[pk]) == 1
        delivery = drive(pk)
    assert delivery.status == WebhookDelivery.Status.DELIVERED and delivery.log.count() == 6


def test_unreachable_receiver_is_retried_not_crashed(db, fast):
    subscribe("http://127.0.0.1:9/nothing-listens-here")
    [pk] = webhook_event_emit(event_type="recipient.bounced", dedupe_key="bounced:4", data={})
    delivery = webhook_deliver(delivery_id=pk)
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.last_status_code is None
    assert delivery.last_error


def test_the_same_fact_is_queued_once_and_only_for_subscribed_types(db, fast):
    subscribe("https://crm.example.com/hook", "campaign.sent")
    assert webhook_event_emit(event_type="recipient.bounced", dedupe_key="bounced:5", data={}) == []
    assert len(webhook_event_emit(event_type="campaign.sent", dedupe_key="campaign-sent:1:1", data={})) == 1
    assert webhook_event_emit(event_type="campaign.sent", dedupe_key="campaign-sent:1:1", data={}) == []
    with pytest.raises(ValueError):
        webhook_event_emit(event_type="campaign.exploded", dedupe_key="x", data={})


def test_backoff_is_exponential_and_capped(settings):
    settings.CAMPAIGNS = {"WEBHOOK_BACKOFF_SECONDS": 30, "WEBHOOK_BACKOFF_MAX_SECONDS": 200}
    assert [backoff_seconds(n) for n in range(1, 6)] == [30, 60, 120, 200, 200]


def test_signature_verification_rejects_tampering_and_old_timestamps():
    body = b'{"id":"1"}'
    now = int(time.time())
    header = webhook_signature(secret=SECRET, timestamp=now, body=body)
    assert webhook_signature_verify(secret=SECRET, header=header, body=body)
    assert not webhook_signature_verify(secret=SECRET, header=header, body=b'{"id":"2"}')
    assert not webhook_signature_verify(secret="another-secret-000000", header=header, body=body)
    old = webhook_signature(secret=SECRET, timestamp=now - 3600, body=body)
    assert not webhook_signature_verify(secret=SECRET, header=old, body=body)
    assert not webhook_signature_verify(secret=SECRET, header="garbage", body=body)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1:70/", "javascript:alert(1)",
                                 "ftp://example.com/x", "//example.com/x", "http://user:pw@example.com/"])
def test_non_http_urls_are_refused(db, url):
    with pytest.raises(ValueError, match="http"):
        subscribe(url)


def test_campaign_sent_is_emitted_once_per_run(fast, campaign, make_customers, django_capture_on_commit_callbacks):
    with WebhookReceiver(SECRET) as receiver:
        subscribe(receiver.url, "campaign.sent")
        make_customers(2)
        campaign_build(campaign=campaign)
        with django_capture_on_commit_callbacks(execute=True):
            campaign_send(campaign=campaign)
    [payload] = receiver.accepted.values()
    assert payload["type"] == "campaign.sent"
    assert payload["data"]["campaign_id"] == campaign.pk and payload["data"]["sent"] == 2


def test_conversion_attributed_is_emitted_on_first_attribution(fast, campaign, make_customers, items):
    from campaigns.services.results import campaign_conversions_update
    from campaigns.services.tracking import recipient_click
    from crm.models import Interaction
    from crm.services import interaction_record

    subscribe("https://crm.example.com/hook", "conversion.attributed")
    make_customers(1)
    campaign_build(campaign=campaign)
    campaign_send(campaign=campaign)
    recipient = Recipient.objects.get(campaign=campaign)
    clicked_at = recipient.sent_at + timedelta(minutes=5)
    recipient_click(recipient=recipient, item_id=recipient.item_ids[0], user_agent="Mozilla/5.0 (Macintosh)",
                    at=clicked_at)
    interaction_record(customer=recipient.customer, item=items[0].__class__.objects.get(pk=recipient.item_ids[0]),
                       kind=Interaction.Kind.PURCHASE, event_id="buy-1", occurred_at=clicked_at + timedelta(hours=1),
                       source=Interaction.Source.WEB)
    for _ in range(2):
        campaign_conversions_update(campaign=campaign)
    [delivery] = WebhookDelivery.objects.filter(event_type="conversion.attributed")
    assert delivery.payload["data"]["recipient_id"] == recipient.pk


def test_recommendations_refreshed_on_activation(db, fast, items, django_capture_on_commit_callbacks):
    from recommendations.models import ModelVersion
    from recommendations.services.registry import model_version_activate
    from tests.campaigns.conftest import recommend
    from tests.factories import CustomerFactory

    subscribe("https://crm.example.com/hook", "recommendations.refreshed")
    version = ModelVersion.objects.create(algorithm="test", status=ModelVersion.Status.READY)
    customers = CustomerFactory.create_batch(2)
    for customer in customers:
        recommend(version, customer, items[:3])
    with django_capture_on_commit_callbacks(execute=True):
        model_version_activate(version=version)
    deliveries = WebhookDelivery.objects.filter(event_type="recommendations.refreshed")
    assert sorted(d.payload["data"]["customer_id"] for d in deliveries) == sorted(c.pk for c in customers)
    first = deliveries.first().payload["data"]
    assert [i["rank"] for i in first["items"]] == [1, 2, 3] and first["model_version_id"] == version.pk


def _admin_api() -> APIClient:
    _, raw = api_key_create(name="integrations", scopes=["admin"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_api_manages_subscriptions_and_shows_the_log(db, fast):
    api = _admin_api()
    created = api.post("/api/v1/webhooks", {"name": "ERP", "url": "https://erp.example.com/hook", "secret": SECRET,
                                            "event_types": ["campaign.sent", "recipient.bounced"]}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert "secret" not in body and body["secret_hint"] == "...cdef"
    pk = body["id"]
    assert api.patch(f"/api/v1/webhooks/{pk}", {"active": False}, format="json").json()["active"] is False
    assert api.get("/api/v1/webhooks").json()["results"][0]["id"] == pk
    assert api.get(f"/api/v1/webhooks/{pk}/deliveries").status_code == 200
    assert api.delete(f"/api/v1/webhooks/{pk}").status_code == 204


@pytest.mark.parametrize("payload", [
    {"name": "x", "url": "file:///etc/passwd", "secret": SECRET, "event_types": ["campaign.sent"]},
    {"name": "x", "url": "https://ok.example.com", "secret": "short", "event_types": ["campaign.sent"]},
    {"name": "x", "url": "https://ok.example.com", "secret": SECRET, "event_types": ["campaign.exploded"]},
    {"name": "x", "url": "https://ok.example.com", "secret": SECRET, "event_types": []},
])
def test_api_refuses_bad_subscriptions(db, payload):
    response = _admin_api().post("/api/v1/webhooks", payload, format="json")
    assert response.status_code == 400
    assert not WebhookSubscription.objects.exists()


def test_api_needs_the_admin_scope(db):
    _, raw = api_key_create(name="reader", scopes=["read", "write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/webhooks").status_code == 403


def test_later_attempts_wait_for_their_time(db, fast):
    subscribe("http://127.0.0.1:9/down")
    [pk] = webhook_event_emit(event_type="recipient.bounced", dedupe_key="bounced:9", data={})
    webhook_deliver(delivery_id=pk)
    assert webhook_deliver(delivery_id=pk, now=timezone.now()) is None  # the backoff has not passed


def test_the_verification_snippet_in_the_api_docs_accepts_our_signature():
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    snippet = re.search(r"```python\n(.*?def verify.*?)```", doc, re.S).group(1)
    namespace: dict = {}
    exec(compile(snippet, "docs/api.md", "exec"), namespace)  # noqa: S102 - our own documentation
    verify = namespace["verify"]
    body = b'{"data":{},"id":"e1","type":"campaign.sent"}'
    header = webhook_signature(secret=SECRET, timestamp=int(time.time()), body=body)
    assert verify(SECRET, header, body)
    assert not verify(SECRET, header, body + b" ")
    assert not verify("wrong-secret-0000000", header, body)

"""Providers through anymail: message ids, tracking webhooks per provider, suppression, soft bounces."""
from __future__ import annotations

import base64
import itertools
from datetime import UTC, datetime

import pytest
from django.core import mail

from campaigns.models import (
    Campaign,
    DeliveryEvent,
    Recipient,
    RecipientDelivery,
    Suppression,
)
from campaigns.services.build import campaign_build
from campaigns.services.deliverability import suppression_add, suppression_lift
from campaigns.services.send import campaign_send
from crm.models import Feedback
from tests.campaigns.esp_payloads import MAILGUN_SIGNING_KEY, MESSAGE_IDS, PROVIDERS, WEBHOOK_SECRET

pytestmark = pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
_ids = itertools.count(1000)


def auth(secret: str = WEBHOOK_SECRET) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


@pytest.fixture
def anymail_settings(settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY}
    settings.CAMPAIGNS = {"SEND_RETRY_BACKOFF_SECONDS": 0, "SCANNER_MIN_SECONDS_AFTER_SEND": 0}
    return settings


@pytest.fixture
def sent(anymail_settings, campaign, make_customers):
    """A campaign sent through anymail's test backend to three customers."""
    make_customers(3)
    campaign_build(campaign=campaign)
    campaign_send(campaign=campaign)
    return list(Recipient.objects.filter(campaign=campaign).select_related("delivery", "customer").order_by("pk"))


def post(client, provider: str, kind: str, recipient: Recipient, *, event_id: str | None = None,
         message_id: str | None = None, headers: dict | None = None, **kwargs):
    path, body, content_type, extra = PROVIDERS[provider](
        kind, message_id=message_id or recipient.delivery.provider_message_id, email=recipient.email,
        event_id=event_id or str(next(_ids)), **kwargs,
    )
    return client.generic("POST", path, body, content_type=content_type, **{**auth(), **extra, **(headers or {})})


SENT_BEFORE_THE_PAYLOADS = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def as_provider(recipient: Recipient, provider: str) -> Recipient:
    """Pretend the provider's API returned its usual kind of id for this recipient's message, sent
    an hour before the events the canned payloads report (2026-11-30 10:00Z): the tests must not
    depend on the day they run."""
    RecipientDelivery.objects.filter(recipient=recipient).update(
        esp=provider, provider_message_id=MESSAGE_IDS[provider]
    )
    Recipient.objects.filter(pk=recipient.pk).update(sent_at=SENT_BEFORE_THE_PAYLOADS)
    recipient.refresh_from_db()
    return recipient


def test_send_stores_the_providers_message_id_per_recipient(sent):
    assert len(mail.outbox) == 3
    ids = [r.delivery.provider_message_id for r in sent]
    assert ids == ["0", "1", "2"]  # anymail's test backend: the outbox index
    assert {r.delivery.esp for r in sent} == {"Test"}
    assert all(r.state == Recipient.State.SENT and r.delivery.status == "accepted" for r in sent)


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_delivery_then_hard_bounce_then_replay(client, sent, provider):
    recipient = as_provider(sent[0], provider)
    assert post(client, provider, "delivered", recipient).status_code == 200
    recipient.delivery.refresh_from_db()
    assert recipient.delivery.status == RecipientDelivery.Status.DELIVERED
    assert recipient.delivery.delivered_at is not None

    response = post(client, provider, "hard_bounce", recipient, event_id="77")
    assert response.status_code == 200
    recipient.delivery.refresh_from_db()
    assert recipient.delivery.status == RecipientDelivery.Status.BOUNCED
    suppression = Suppression.objects.active().get(email=recipient.email.lower())
    assert suppression.reason == Suppression.Reason.HARD_BOUNCE
    events = DeliveryEvent.objects.count()

    replay = post(client, provider, "hard_bounce", recipient, event_id="77")  # the provider retries
    assert replay.status_code == 200
    assert DeliveryEvent.objects.count() == events
    assert Suppression.objects.filter(email=recipient.email.lower()).count() == 1


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_complaint_suppresses_unsubscribes_and_files_feedback_once(client, sent, provider):
    recipient = as_provider(sent[1], provider)
    for _ in range(2):  # the second post is a replay
        assert post(client, provider, "complaint", recipient, event_id="55").status_code == 200
    recipient.customer.refresh_from_db()
    assert recipient.customer.unsubscribed_at is not None and not recipient.customer.email_opt_in
    assert Suppression.objects.active().get(email=recipient.email.lower()).reason == Suppression.Reason.COMPLAINT
    feedback = Feedback.objects.get(customer=recipient.customer)
    assert feedback.kind == Feedback.Kind.COMPLAINT and feedback.campaign_recipient_id == recipient.pk
    recipient.delivery.refresh_from_db()
    assert recipient.delivery.status == RecipientDelivery.Status.COMPLAINED
    # A late "delivered" does not hide the complaint.
    post(client, provider, "delivered", recipient)
    recipient.delivery.refresh_from_db()
    assert recipient.delivery.status == RecipientDelivery.Status.COMPLAINED


@pytest.mark.parametrize("provider", ["brevo", "mailgun", "sendgrid"])
def test_machine_opens_are_flagged_and_not_counted(client, sent, provider):
    recipient = as_provider(sent[2], provider)
    assert post(client, provider, "open", recipient).status_code == 200
    recipient.refresh_from_db()
    assert recipient.opened_at is None
    assert recipient.delivery.machine_opened_at is not None
    assert DeliveryEvent.objects.get(recipient=recipient).machine


def test_a_person_opening_counts(client, sent, settings):
    recipient = as_provider(sent[0], "postmark")
    settings.CAMPAIGNS = {"MACHINE_OPEN_USER_AGENTS": [], "SCANNER_MIN_SECONDS_AFTER_SEND": 0}
    assert post(client, "postmark", "open", recipient).status_code == 200
    recipient.refresh_from_db()
    assert recipient.opened_at is not None


def test_the_same_open_from_apple_privacy_protection_is_not_counted(client, sent):
    recipient = as_provider(sent[0], "postmark")  # Postmark reports the bare "Mozilla/5.0" agent
    assert post(client, "postmark", "open", recipient).status_code == 200
    recipient.refresh_from_db()
    assert recipient.opened_at is None and recipient.delivery.machine_opened_at is not None


@pytest.mark.parametrize("provider", ["amazon_ses", "brevo", "postmark"])
def test_soft_bounce_resends_a_bounded_number_of_times(client, sent, provider, settings,
                                                       django_capture_on_commit_callbacks):
    settings.CAMPAIGNS = {"SOFT_BOUNCE_MAX_RETRIES": 1, "SEND_RETRY_BACKOFF_SECONDS": 0}
    recipient = as_provider(sent[0], provider)
    before = len(mail.outbox)
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, provider, "soft_bounce", recipient).status_code == 200
    recipient.refresh_from_db()
    assert recipient.state == Recipient.State.SENT and recipient.attempts == 2
    assert len(mail.outbox) == before + 1 and mail.outbox[-1].to == [recipient.email]
    assert not Suppression.objects.filter(email=recipient.email.lower()).exists()

    as_provider(recipient, provider)  # the re-send got a new id from the provider
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, provider, "soft_bounce", recipient).status_code == 200
    recipient.refresh_from_db()
    assert recipient.state == Recipient.State.FAILED and "gave up" in recipient.error
    assert len(mail.outbox) == before + 1
    assert RecipientDelivery.objects.get(recipient=recipient).soft_bounces == 2


def test_mailgun_temporary_failure_is_a_deferral(client, sent):
    recipient = as_provider(sent[0], "mailgun")
    assert post(client, "mailgun", "soft_bounce", recipient).status_code == 200
    recipient.delivery.refresh_from_db()
    assert recipient.delivery.status == RecipientDelivery.Status.DEFERRED
    assert not Suppression.objects.exists()


# --- bad input: a 4xx and nothing changes ----------------------------------------------------------

def _nothing_changed():
    assert not DeliveryEvent.objects.exists()
    assert not Suppression.objects.exists()
    assert not Feedback.objects.exists()
    assert not RecipientDelivery.objects.exclude(status=RecipientDelivery.Status.ACCEPTED).exists()


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_unsigned_wrong_secret_and_unknown_message_are_refused(client, sent, provider):
    recipient = as_provider(sent[0], provider)
    path, body, content_type, extra = PROVIDERS[provider](
        "complaint", message_id=MESSAGE_IDS[provider], email=recipient.email, event_id="9")
    unsigned = client.generic("POST", path, body, content_type=content_type, **extra)
    assert 400 <= unsigned.status_code < 500
    wrong = client.generic("POST", path, body, content_type=content_type, **{**auth("provider:guess"), **extra})
    assert wrong.status_code == 400
    unknown = post(client, provider, "complaint", recipient, message_id="<not-ours@example.com>")
    assert unknown.status_code == 406
    _nothing_changed()


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_malformed_json_is_a_400(client, sent, provider):
    path = f"/webhooks/esp/{provider}/tracking/"
    extra = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification", "HTTP_X_AMZ_SNS_MESSAGE_ID": "1"}
    response = client.generic("POST", path, b'{"event": "delivered", ', content_type="application/json",
                              **{**auth(), **extra})
    assert response.status_code == 400
    _nothing_changed()


def test_mailgun_wrong_signature_is_refused(client, sent):
    recipient = as_provider(sent[0], "mailgun")
    response = post(client, "mailgun", "complaint", recipient, key="key-forged")
    assert response.status_code == 400
    _nothing_changed()


def test_address_of_another_recipient_is_unknown(client, sent):
    recipient = as_provider(sent[0], "postmark")
    path, body, content_type, extra = PROVIDERS["postmark"](
        "complaint", message_id=MESSAGE_IDS["postmark"], email=sent[1].email, event_id="5")
    # The id is known, but the address is not the one it was sent to.
    assert client.generic("POST", path, body, content_type=content_type, **auth()).status_code == 406
    _nothing_changed()
    recipient.refresh_from_db()
    assert recipient.delivery.status == RecipientDelivery.Status.ACCEPTED


def test_webhooks_are_closed_without_a_secret(client, sent, settings):
    settings.ANYMAIL = {}
    recipient = as_provider(sent[0], "postmark")
    assert post(client, "postmark", "complaint", recipient).status_code == 403
    _nothing_changed()


# --- suppression is honoured by every later build and send ----------------------------------------

def test_a_suppressed_address_is_never_sent_to_in_later_campaigns(client, sent, items):
    bounced = as_provider(sent[0], "amazon_ses")
    assert post(client, "amazon_ses", "hard_bounce", bounced).status_code == 200
    for n in range(2):
        later = Campaign.objects.create(name=f"Later {n}", n_items=3, holdout_share=0.0, frequency_cap_count=0)
        mail.outbox.clear()
        campaign_build(campaign=later)
        row = Recipient.objects.get(campaign=later, customer=bounced.customer)
        assert row.state == Recipient.State.SKIPPED and row.skip_reason == Recipient.SkipReason.SUPPRESSED
        campaign_send(campaign=later)
        assert bounced.email not in {to for m in mail.outbox for to in m.to}
        assert len(mail.outbox) == 2


def test_an_address_suppressed_between_build_and_send_is_skipped_at_send(anymail_settings, campaign,
                                                                          make_customers):
    customers = make_customers(2)
    campaign_build(campaign=campaign)
    suppression_add(email=customers[0].email.upper(), reason=Suppression.Reason.MANUAL)
    report = campaign_send(campaign=campaign)
    assert report.sent == 1 and report.skipped == 1
    assert [m.to for m in mail.outbox] == [[customers[1].email]]


def test_lifting_a_suppression_needs_a_note_and_allows_mail_again(anymail_settings, campaign, make_customers):
    customer = make_customers(1)[0]
    suppression, created = suppression_add(email=customer.email, reason=Suppression.Reason.HARD_BOUNCE)
    assert created and not suppression_add(email=customer.email, reason=Suppression.Reason.COMPLAINT)[1]
    with pytest.raises(ValueError):
        suppression_lift(suppression=suppression, note="  ")
    assert suppression_lift(suppression=suppression, note="Mailbox restored; customer asked", by="ops")
    campaign_build(campaign=campaign)
    assert campaign_send(campaign=campaign).sent == 1
    # A new bounce suppresses again (a new row; the lifted one stays as history).
    suppression_add(email=customer.email, reason=Suppression.Reason.HARD_BOUNCE)
    assert Suppression.objects.filter(email=customer.email).count() == 2


# --- sending through a provider's API, and the SMTP path --------------------------------------------

def test_provider_refusal_fails_and_unavailability_defers(anymail_settings, campaign, make_customers):
    from tests.campaigns.esp_backend import ScriptedBackend

    anymail_settings.EMAIL_BACKEND = "tests.campaigns.esp_backend.ScriptedBackend"
    anymail_settings.CAMPAIGNS = {"SEND_RETRY_BACKOFF_SECONDS": 0}
    refused, busy, fine = make_customers(3)
    ScriptedBackend.answers = {refused.email: "refused", busy.email: "503"}
    try:
        campaign_build(campaign=campaign)
        report = campaign_send(campaign=campaign)
    finally:
        ScriptedBackend.answers = {}
    states = dict(Recipient.objects.filter(campaign=campaign).values_list("customer_id", "state"))
    assert states == {refused.pk: "failed", busy.pk: "pending", fine.pk: "sent"}
    assert report.in_doubt == 0
    busy_row = Recipient.objects.get(campaign=campaign, customer=busy)
    assert "Service Unavailable" in busy_row.error and busy_row.attempts == 6  # 1 + SEND_MAX_RETRIES


def test_smtp_path_still_sends_and_honours_suppression(smtp_sink, campaign, make_customers):
    kept, suppressed = make_customers(2)
    suppression_add(email=suppressed.email, reason=Suppression.Reason.COMPLAINT)
    campaign_build(campaign=campaign)
    report = campaign_send(campaign=campaign)
    assert report.sent == 1 and report.skipped == 1
    assert list(smtp_sink.count_by_recipient()) == [kept.email]
    assert not RecipientDelivery.objects.exists()  # SMTP has no provider id and no webhooks


def test_our_open_pixel_fetched_by_apple_privacy_protection_is_a_machine_open(client, sent):
    from campaigns.links import open_url

    path = open_url(recipient_id=sent[0].pk).removeprefix("http://testserver")
    client.get(path, HTTP_USER_AGENT="Mozilla/5.0")
    sent[0].refresh_from_db()
    assert sent[0].opened_at is None and sent[0].delivery.machine_opened_at is not None
    client.get(path, HTTP_USER_AGENT="Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15")
    sent[0].refresh_from_db()
    assert sent[0].opened_at is not None


def test_a_provider_tracked_click_on_an_item_link_is_a_click_interaction(client, sent):
    import json

    from campaigns.links import click_url
    from crm.models import Interaction

    recipient = as_provider(sent[0], "amazon_ses")
    link = click_url(recipient_id=recipient.pk, item_id=recipient.item_ids[1])
    path, body, content_type, extra = PROVIDERS["amazon_ses"](
        "open", message_id=MESSAGE_IDS["amazon_ses"], email=recipient.email, event_id="321")
    envelope = json.loads(body)
    event = json.loads(envelope["Message"])
    event.update(eventType="Click", click={"timestamp": "2026-11-30T10:00:00.000Z", "link": link,
                                           "userAgent": "Mozilla/5.0 (Windows NT 10.0) Firefox/133.0",
                                           "ipAddress": "203.0.113.9", "linkTags": {}})
    event.pop("open")
    envelope["Message"] = json.dumps(event)
    response = client.generic("POST", path, json.dumps(envelope), content_type=content_type, **{**auth(), **extra})
    assert response.status_code == 200
    interaction = Interaction.objects.get(customer=recipient.customer)
    assert interaction.kind == "click" and interaction.item_id == recipient.item_ids[1]
    assert not interaction.excluded_from_training
    recipient.refresh_from_db()
    assert recipient.clicked_at is not None


def test_results_count_deliveries_bounces_complaints_and_keep_machine_opens_out(client, sent):
    from campaigns.services.results import campaign_results

    post(client, "postmark", "delivered", as_provider(sent[0], "postmark"))
    post(client, "amazon_ses", "hard_bounce", as_provider(sent[1], "amazon_ses"))
    post(client, "brevo", "open", as_provider(sent[2], "brevo"))  # an Apple MPP proxy open
    results = campaign_results(campaign=sent[0].campaign)
    assert (results["delivered"], results["bounced"], results["complained"]) == (1, 1, 0)
    assert results["machine_opens"] == 1 and results["opened"] == 0 and results["open_rate"] == 0


def test_bounce_complaint_and_unsubscribe_reach_a_subscribed_integration(client, sent,
                                                                         django_capture_on_commit_callbacks):
    from campaigns.links import unsubscribe_url
    from campaigns.services.webhooks_out import webhook_subscription_create
    from tests.campaigns.webhook_receiver import WebhookReceiver

    secret = "integration-secret-0001"
    with WebhookReceiver(secret) as receiver:
        webhook_subscription_create(name="crm", url=receiver.url, secret=secret, event_types=[
            "recipient.bounced", "recipient.complained", "recipient.unsubscribed"])
        with django_capture_on_commit_callbacks(execute=True):
            post(client, "mailgun", "hard_bounce", as_provider(sent[0], "mailgun"), event_id="b1")
            post(client, "mailgun", "hard_bounce", sent[0], event_id="b1")  # replay: no second event
        with django_capture_on_commit_callbacks(execute=True):
            post(client, "postmark", "complaint", as_provider(sent[1], "postmark"))
        with django_capture_on_commit_callbacks(execute=True):
            client.post(unsubscribe_url(recipient_id=sent[2].pk).removeprefix("http://testserver"))
    received = sorted((p["type"], p["data"]["recipient_id"]) for p in receiver.accepted.values())
    assert received == sorted([
        ("recipient.bounced", sent[0].pk),
        ("recipient.complained", sent[1].pk),
        ("recipient.unsubscribed", sent[1].pk),  # a complaint withdraws consent too
        ("recipient.unsubscribed", sent[2].pk),
    ])
    assert all(r["verified"] and r["code"] == 200 for r in receiver.requests)
    assert len(receiver.requests) == 4


@pytest.mark.parametrize("provider", ["amazon_ses", "brevo", "postmark", "sendgrid"])
@pytest.mark.parametrize("body", ['"just a string"', "[1, 2]", '{"event": {"nested": true}}', "null", "42",
                                  '{"ts_epoch": "soon", "event": "delivered", "message-id": 7}', "\u00ff\u00fe"])
def test_odd_json_shapes_are_a_4xx_and_change_nothing(client, sent, provider, body):
    extra = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification", "HTTP_X_AMZ_SNS_MESSAGE_ID": "1"}
    response = client.generic("POST", f"/webhooks/esp/{provider}/tracking/", body.encode("latin-1"),
                              content_type="application/json", **{**auth(), **extra})
    assert 400 <= response.status_code < 500, response.content
    _nothing_changed()


def test_a_provider_rejection_is_recorded_and_only_a_bad_address_is_suppressed(client, sent):
    import json

    recipient = as_provider(sent[0], "sendgrid")
    dropped = [{"email": recipient.email, "timestamp": 1764496800, "event": "dropped", "reason": "Bounced Address",
                "sg_event_id": "drop-1", "anymail_id": MESSAGE_IDS["sendgrid"]}]
    response = client.generic("POST", "/webhooks/esp/sendgrid/tracking/", json.dumps(dropped),
                              content_type="application/json", **auth())
    assert response.status_code == 200
    assert Suppression.objects.active().filter(email=recipient.email.lower()).exists()

    other = as_provider(sent[1], "postmark")
    blocked = {"RecordType": "Bounce", "ID": 99, "Type": "ManuallyDeactivated", "MessageID": MESSAGE_IDS["postmark"],
               "Email": other.email, "BouncedAt": "2026-11-30T10:00:00Z", "Details": "deactivated by hand"}
    response = client.generic("POST", "/webhooks/esp/postmark/tracking/", json.dumps(blocked),
                              content_type="application/json", **auth())
    assert response.status_code == 200
    other.delivery.refresh_from_db()
    assert other.delivery.status == RecipientDelivery.Status.REJECTED
    assert not Suppression.objects.filter(email=other.email.lower()).exists()

"""Sending through a real SMTP server: batches, at most once, retries, failures, skips."""
from __future__ import annotations

import pytest
from django.core import mail
from django.utils import timezone

from campaigns.models import Campaign, Recipient
from campaigns.services.build import CampaignStateError
from campaigns.services.send import NOTHING_BUILT, OFFER_LIST_NOT_SENT, campaign_send, recipient_reconcile

pytestmark = pytest.mark.django_db


def test_send_delivers_one_message_per_recipient_over_smtp(built_campaign, smtp_sink, settings):
    """Every pending recipient: one message at the server, state sent, Message-ID stored."""
    # given
    settings.CAMPAIGNS = {"SEND_BATCH_SIZE": 2, "SEND_RETRY_BACKOFF_SECONDS": 0}
    # when
    report = campaign_send(campaign=built_campaign)
    # then
    assert (report.batches, report.sent, report.pending, report.in_doubt) == (2, 3, 0, 0)
    assert sorted(smtp_sink.count_by_recipient().values()) == [1, 1, 1]
    recipient = Recipient.objects.first()
    delivered = next(m for m in smtp_sink.messages if m["To"] == recipient.email)
    assert delivered["Message-ID"] == recipient.message_id
    assert delivered["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert {p.get_content_type() for p in delivered.walk()} >= {"text/plain", "text/html"}
    built_campaign.refresh_from_db()
    assert built_campaign.status == Campaign.Status.SENT


def test_sending_again_sends_nothing_twice(built_campaign, smtp_sink):
    campaign_send(campaign=built_campaign)
    report = campaign_send(campaign=built_campaign)
    assert report.sent == 3 and len(smtp_sink.messages) == 3


def test_transient_reply_is_retried_and_delivered_once(built_campaign, smtp_sink):
    """A 451 at RCPT puts the recipient back to pending; the batch retry delivers it once."""
    # given
    recipient = Recipient.objects.first()
    smtp_sink.rcpt_replies[recipient.email] = ["451 4.7.1 Greylisted, try again later"]
    # when
    report = campaign_send(campaign=built_campaign)
    # then
    assert report.sent == 3
    assert smtp_sink.count_by_recipient()[recipient.email] == 1
    recipient.refresh_from_db()
    assert recipient.attempts == 2


def test_permanent_reply_is_recorded_as_failed(built_campaign, smtp_sink):
    recipient = Recipient.objects.first()
    smtp_sink.rcpt_replies[recipient.email] = ["550 5.1.1 No such user"] * 10
    report = campaign_send(campaign=built_campaign)
    recipient.refresh_from_db()
    assert (report.sent, report.failed) == (2, 1)
    assert recipient.state == Recipient.State.FAILED and "550" in recipient.error and recipient.failed_at


def test_server_down_leaves_recipients_pending(built_campaign, settings):
    """Connection refused happens before any claim: nothing is in doubt, all stay pending."""
    from tests.campaigns.smtp_sink import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    settings.CAMPAIGNS = {"SEND_RETRY_BACKOFF_SECONDS": 0}
    report = campaign_send(campaign=built_campaign)
    assert (report.sent, report.pending, report.in_doubt) == (0, 3, 0)


def test_a_recipient_unsubscribed_after_the_build_is_skipped(built_campaign):
    recipient = Recipient.objects.select_related("customer").first()
    recipient.customer.unsubscribed_at = timezone.now()
    recipient.customer.save()
    report = campaign_send(campaign=built_campaign)
    assert report.sent == 2 and len(mail.outbox) == 2
    recipient.refresh_from_db()
    assert (recipient.state, recipient.skip_reason) == ("skipped", "unsubscribed")


def test_in_doubt_recipients_are_never_resent_and_can_be_reconciled(built_campaign):
    """A row left 'sending' (a worker died) is reported in doubt, not sent again."""
    # given
    stuck = Recipient.objects.first()
    Recipient.objects.filter(pk=stuck.pk).update(state=Recipient.State.SENDING, claimed_at=timezone.now())
    # when
    report = campaign_send(campaign=built_campaign)
    # then
    assert (report.sent, report.in_doubt) == (2, 1)
    assert stuck.email not in {m.to[0] for m in mail.outbox}
    assert recipient_reconcile(recipient_ids=[stuck.pk], delivered=False) == 1
    report = campaign_send(campaign=built_campaign)
    assert (report.sent, report.in_doubt) == (3, 0) and len(mail.outbox) == 3


def test_holdout_and_skipped_rows_are_never_sent(campaign, make_customers):
    from campaigns.services.build import campaign_build

    make_customers(40)
    campaign.holdout_share = 0.5
    campaign.save()
    campaign_build(campaign=campaign)
    report = campaign_send(campaign=campaign)
    holdout = Recipient.objects.filter(is_holdout=True)
    assert report.sent == len(mail.outbox) == 40 - holdout.count()
    assert not set(holdout.values_list("email", flat=True)) & {m.to[0] for m in mail.outbox}


def test_send_refuses_unbuilt_and_offer_list_campaigns(campaign):
    with pytest.raises(CampaignStateError, match=NOTHING_BUILT.format(id=campaign.pk)):
        campaign_send(campaign=campaign)
    campaign.channel = Campaign.Channel.OFFER_LIST
    campaign.save()
    with pytest.raises(CampaignStateError, match=OFFER_LIST_NOT_SENT.format(id=campaign.pk)):
        campaign_send(campaign=campaign)


def test_throttle_limits_the_send_rate(built_campaign, settings):
    import time

    settings.CAMPAIGNS = {"SEND_RATE_PER_SECOND": 10}
    started = time.monotonic()
    campaign_send(campaign=built_campaign)
    assert time.monotonic() - started >= 0.2  # 3 messages at 10/s: two intervals at least


def test_send_time_check_never_mails_without_opt_in(built_campaign):
    """A recipient built while opted in (or by an older build that honoured consent_required=False)
    is skipped at send time once the customer has no opt-in, whatever consent_required says."""
    built_campaign.consent_required = False
    built_campaign.save()
    recipient = built_campaign.recipients.filter(state=Recipient.State.PENDING).first()
    type(recipient.customer).objects.filter(pk=recipient.customer_id).update(email_opt_in=False)
    campaign_send(campaign=built_campaign)
    recipient.refresh_from_db()
    assert (recipient.state, recipient.skip_reason) == ("skipped", "no_consent")
    assert recipient.email not in [m.to[0] for m in mail.outbox]

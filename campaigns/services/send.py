"""Sending a campaign: batches over one reused connection, a throttle, and an at-most-once state machine.

Each recipient goes ``pending -> sending -> sent | failed``. The claim
(``UPDATE ... SET state='sending' WHERE id=%s AND state='pending'``) is committed before the SMTP
call, and only the server's reply moves the row on:

- 2xx: ``sent``;
- 5xx (e.g. a refused mailbox): ``failed`` with the error, never retried;
- 4xx (greylisting, a full mailbox, "try later"): back to ``pending`` and the batch is retried;
- a template that fails to render for the recipient: ``failed`` with ``template: <why>``, before any claim;
- no reply (connection lost, timeout, a killed worker): the row stays ``sending``. The message may
  or may not have been delivered, so it is never re-sent automatically: it is reported "in doubt"
  and an operator reconciles it in the admin.
"""
from __future__ import annotations

import contextlib
import logging
import smtplib
import time
from dataclasses import asdict, dataclass

from celery import current_app
from django.core.mail import get_connection
from django.db.models import F
from django.utils import timezone

from campaigns.conf import campaigns_settings
from campaigns.models import Campaign, Recipient
from campaigns.selectors import recent_send_counts
from campaigns.services.build import CampaignStateError, recipient_skip_reason
from campaigns.services.deliverability import (
    AnymailError,
    recipient_delivery_accepted,
    recipients_skip_suppressed,
    send_error_outcome,
    send_error_text,
)
from campaigns.services.local_time import recipients_outside_quiet_hours
from campaigns.services.render import campaign_templates_validate, message_id_for, recipient_message
from campaigns.templating import CampaignTemplateError

logger = logging.getLogger(__name__)

OFFER_LIST_NOT_SENT = "Campaign {id} is an offer list: export its offers instead of sending it."
NOTHING_BUILT = "Campaign {id} has no recipients yet: build it first."
CANNOT_SEND = "Campaign {id} is {status} and cannot be sent."


class TransientSendError(Exception):
    """The server answered 4xx for some recipients: they are pending again and the batch should retry."""


# The errors a batch retries (with backoff). Recipients already sent are never sent again: a retry
# only claims rows still ``pending``.
TRANSIENT_SEND_ERRORS = (
    TransientSendError,
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    smtplib.SMTPHeloError,
    ConnectionError,
    TimeoutError,
)


@dataclass(frozen=True)
class SendRetryPolicy:
    """How a batch retries ``TRANSIENT_SEND_ERRORS``: the one definition, used by the Celery task
    (``campaigns.tasks``) and by inline sending. The delay doubles each retry up to ``backoff_max``;
    the first delay is ``worker_backoff`` seconds on a worker (with Celery's jitter) and the
    ``SEND_RETRY_BACKOFF_SECONDS`` setting inline, where a person waits at the command line."""

    max_retries: int = 5
    worker_backoff: int = 5
    backoff_max: int = 600

    def inline_delay(self, attempt: int) -> float:
        """Seconds before inline retry ``attempt + 1``."""
        return min(campaigns_settings().SEND_RETRY_BACKOFF_SECONDS * 2**attempt, self.backoff_max)


SEND_RETRY = SendRetryPolicy()
SEND_MAX_RETRIES = SEND_RETRY.max_retries


@dataclass
class BatchResult:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    in_doubt: int = 0
    not_claimed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Throttle:
    """At most ``rate`` messages per second in this process (0: unlimited)."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self.next_at > now:
            time.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.interval


def _send_time_skip_reason(recipient: Recipient, sends: dict[int, int]) -> str:
    """Consent and caps are checked again at send time: things change between build and send."""
    customer = recipient.customer
    return recipient_skip_reason(
        recipient.campaign, customer_id=customer.pk, email=recipient.email, opt_in=customer.email_opt_in,
        unsubscribed_at=customer.unsubscribed_at, sends=sends,
    )


def _reply_code(exc: smtplib.SMTPException) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return max(codes) if codes else None
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code
    return None


def _pending(recipient_ids: list[int]):
    return (
        Recipient.objects.filter(pk__in=recipient_ids, state=Recipient.State.PENDING)
        .select_related("customer", "campaign")
        .order_by("pk")
    )


def recipient_batch_send(*, recipient_ids: list[int], resend: bool = False) -> BatchResult:
    """Send the still-pending recipients among ``recipient_ids`` over one SMTP connection.

    ``resend``: a soft-bounce re-send, allowed after the run finished (not when paused/cancelled).
    Raises one of ``TRANSIENT_SEND_ERRORS`` when the batch should be retried later.
    """
    result = BatchResult()
    recipients = list(_pending(recipient_ids))
    result.not_claimed = len(set(recipient_ids)) - len(recipients)
    recipients, result.skipped = recipients_skip_suppressed(recipients=recipients)
    if not recipients:
        return result
    campaign = recipients[0].campaign
    sendable = (Campaign.Status.SENDING, Campaign.Status.SENT, Campaign.Status.SCHEDULED, Campaign.Status.READY)
    if campaign.status not in (sendable if resend else (Campaign.Status.SENDING,)):
        logger.info("campaign %s is %s: batch not sent", campaign.pk, campaign.status)
        return result
    sends = {}
    if campaign.frequency_cap_count:
        sends = recent_send_counts(customer_ids=[r.customer_id for r in recipients], days=campaign.frequency_cap_days)
    throttle = _Throttle(campaigns_settings().SEND_RATE_PER_SECOND)
    connection = get_connection(fail_silently=False)
    connection.open()  # a connect error raises here, before anything is claimed
    try:
        for index, recipient in enumerate(recipients):
            if index and index % 50 == 0 and _campaign_halted(campaign.pk):
                break
            _send_one(recipient, connection, sends, throttle, result)
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            connection.close()
    if result.deferred:
        raise TransientSendError(f"{result.deferred} recipient(s) deferred by the server (4xx)")
    return result


def _campaign_halted(campaign_id: int) -> bool:
    return Campaign.objects.filter(pk=campaign_id).exclude(status=Campaign.Status.SENDING).exists()


def _send_one(recipient: Recipient, connection, sends: dict[int, int], throttle: _Throttle,
              result: BatchResult) -> None:
    pending = Recipient.objects.filter(pk=recipient.pk, state=Recipient.State.PENDING)
    reason = _send_time_skip_reason(recipient, sends)
    if reason:
        result.skipped += pending.update(state=Recipient.State.SKIPPED, skip_reason=reason)
        return
    recipient.message_id = recipient.message_id or message_id_for(recipient=recipient)
    try:
        message = recipient_message(recipient=recipient, connection=connection)  # render before the claim
    except CampaignTemplateError as exc:
        # A template that fails for this recipient fails this recipient, visibly, and the send goes on:
        # letting it escape would leave the row pending and the campaign "sending" for ever.
        logger.warning("campaign %s recipient %s not rendered: %s", recipient.campaign_id, recipient.pk, exc)
        result.failed += pending.update(
            state=Recipient.State.FAILED, failed_at=timezone.now(), error=f"template: {exc}"[:2000]
        )
        return
    throttle.wait()
    claimed = pending.update(
        state=Recipient.State.SENDING, claimed_at=timezone.now(), message_id=recipient.message_id,
        attempts=F("attempts") + 1,
    )
    if claimed != 1:  # another worker got it first
        result.not_claimed += 1
        return
    # The claim is committed (autocommit): from here on a crash leaves the row "sending" (in doubt).
    sending = Recipient.objects.filter(pk=recipient.pk, state=Recipient.State.SENDING)
    try:
        delivered = connection.send_messages([message])
    except smtplib.SMTPException as exc:
        code = _reply_code(exc)
        if code is not None and 500 <= code < 600:
            sending.update(state=Recipient.State.FAILED, failed_at=timezone.now(), error=f"{code}: {exc}"[:2000])
            result.failed += 1
            return
        if code is not None and 400 <= code < 500:
            sending.update(state=Recipient.State.PENDING, error=f"{code}: {exc}"[:2000])
            result.deferred += 1
            return
        sending.update(error=f"in doubt: {exc!r}"[:2000])
        result.in_doubt += 1
        raise
    except AnymailError as exc:  # a provider's API (before OSError: requests' errors are OSErrors)
        outcome = send_error_outcome(exc)
        if outcome == "failed":
            sending.update(state=Recipient.State.FAILED, failed_at=timezone.now(), error=send_error_text(exc))
            result.failed += 1
            return
        if outcome == "deferred":
            sending.update(state=Recipient.State.PENDING, error=send_error_text(exc))
            result.deferred += 1
            return
        sending.update(error=f"in doubt: {send_error_text(exc)}"[:2000])
        result.in_doubt += 1
        raise ConnectionError(send_error_text(exc)[:200]) from exc
    except OSError as exc:  # connection reset, timeout: no reply, so the outcome is unknown
        sending.update(error=f"in doubt: {exc!r}"[:2000])
        result.in_doubt += 1
        raise
    if delivered:
        sending.update(state=Recipient.State.SENT, sent_at=timezone.now(), error="")
        recipient_delivery_accepted(recipient=recipient, message=message, esp=getattr(connection, "esp_name", ""))
        result.sent += 1
    else:
        sending.update(state=Recipient.State.FAILED, failed_at=timezone.now(), error="no valid address")
        result.failed += 1


@dataclass
class SendReport:
    campaign_id: int
    run: int
    batches: int
    sent: int
    failed: int
    skipped: int
    pending: int
    in_doubt: int


def campaign_send(*, campaign: Campaign, wait: bool = True) -> SendReport:
    """Send the current run's pending recipients, in batches.

    A template that fails on a sample message is refused before anything changes
    (``CampaignTemplateError``); one that fails only for some recipients fails those recipients.

    ``wait=True`` runs the batches in this process (what ``manage.py campaign send`` does);
    ``wait=False`` enqueues one Celery task per batch after the transaction commits. Running it
    again is safe: only ``pending`` rows are claimed; ``sending`` rows are reported in doubt.
    """
    if campaign.channel == Campaign.Channel.OFFER_LIST:
        raise CampaignStateError(OFFER_LIST_NOT_SENT.format(id=campaign.pk))
    run = campaign.current_run
    if not run or not Recipient.objects.filter(campaign=campaign, run=run).exists():
        raise CampaignStateError(NOTHING_BUILT.format(id=campaign.pk))
    campaign_templates_validate(campaign=campaign)  # CampaignTemplateError (a 400): nothing changes
    started = Campaign.objects.filter(pk=campaign.pk).exclude(
        status__in=[Campaign.Status.BUILDING, Campaign.Status.CANCELLED, Campaign.Status.DRAFT]
    ).update(status=Campaign.Status.SENDING)
    if not started:
        campaign.refresh_from_db()
        raise CampaignStateError(CANNOT_SEND.format(id=campaign.pk, status=campaign.status))
    ids = list(
        Recipient.objects.filter(campaign=campaign, run=run, state=Recipient.State.PENDING)
        .order_by("pk").values_list("pk", flat=True)
    )
    ids, waiting = recipients_outside_quiet_hours(campaign=campaign, recipient_ids=ids)  # the rest: waves
    return _send_in_batches(campaign, ids, wait=wait, finish=not waiting)


def _send_in_batches(campaign: Campaign, ids: list[int], *, wait: bool, finish: bool) -> SendReport:
    from crm.jobs import enqueue

    size = campaigns_settings().SEND_BATCH_SIZE
    batches = [ids[i:i + size] for i in range(0, len(ids), size)]
    if not wait and current_app.conf.task_always_eager:
        wait = True  # no broker: an eager retry would surface in the caller, so send inline instead
    for batch in batches:
        if wait:
            _batch_send_inline(batch)
        else:
            enqueue("campaigns.send_batch", batch)
    if finish and (wait or not batches):
        campaign_send_finish(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign_send_report(campaign=campaign, batches=len(batches))


def campaign_send_recipients(*, campaign: Campaign, recipient_ids: list[int], finish: bool,
                             wait: bool = False) -> SendReport:
    """Send some pending recipients of the current run (one local-time wave); ``finish``: the last wave."""
    started = Campaign.objects.filter(pk=campaign.pk).exclude(
        status__in=[Campaign.Status.BUILDING, Campaign.Status.CANCELLED, Campaign.Status.DRAFT,
                    Campaign.Status.PAUSED]
    ).update(status=Campaign.Status.SENDING)
    if not started:
        campaign.refresh_from_db()
        raise CampaignStateError(CANNOT_SEND.format(id=campaign.pk, status=campaign.status))
    return _send_in_batches(campaign, recipient_ids, wait=wait, finish=finish)


def _batch_send_inline(recipient_ids: list[int]) -> None:
    """One batch in this process, with the same retry policy as the task (backoff, then give up)."""
    for attempt in range(SEND_MAX_RETRIES + 1):
        try:
            recipient_batch_send(recipient_ids=recipient_ids)
            return
        except TRANSIENT_SEND_ERRORS as exc:
            if attempt == SEND_MAX_RETRIES:
                logger.warning("batch of %s recipients gave up after %s retries: %r", len(recipient_ids), attempt, exc)
                return
            logger.info("batch retry %s after %r", attempt + 1, exc)
            time.sleep(SEND_RETRY.inline_delay(attempt))


def campaign_send_report(*, campaign: Campaign, batches: int = 0) -> SendReport:
    from campaigns.services.build import recipient_state_counts

    counts = recipient_state_counts(campaign=campaign, run=campaign.current_run)
    return SendReport(
        campaign_id=campaign.pk, run=campaign.current_run, batches=batches,
        sent=counts.get(Recipient.State.SENT, 0), failed=counts.get(Recipient.State.FAILED, 0),
        skipped=counts.get(Recipient.State.SKIPPED, 0), pending=counts.get(Recipient.State.PENDING, 0),
        in_doubt=counts.get(Recipient.State.SENDING, 0),
    )


def campaign_send_finish(*, campaign_id: int) -> bool:
    """Close the run once nothing is pending: ``sent`` (recurring campaigns go back to ``scheduled``)."""
    campaign = Campaign.objects.get(pk=campaign_id)
    if Recipient.objects.filter(campaign=campaign, run=campaign.current_run, state=Recipient.State.PENDING).exists():
        return False
    status = Campaign.Status.SCHEDULED if campaign.is_recurring else Campaign.Status.SENT
    finished = bool(
        Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
            status=status, sent_at=timezone.now()
        )
    )
    if finished:
        from campaigns.services.webhooks_out import campaign_sent_emit

        campaign_sent_emit(campaign=campaign)
    return finished


def recipient_reconcile(*, recipient_ids: list[int], delivered: bool) -> int:
    """An operator's decision on in-doubt rows: mark them sent, or requeue them (pending) to send again."""
    in_doubt = Recipient.objects.filter(pk__in=recipient_ids, state=Recipient.State.SENDING)
    if delivered:
        return in_doubt.update(state=Recipient.State.SENT, sent_at=F("claimed_at"), error="reconciled: marked sent")
    return in_doubt.update(state=Recipient.State.PENDING, error="reconciled: requeued")

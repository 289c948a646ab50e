"""Sending a campaign: claimed batches over one reused connection, per-domain throttles, at most once.

Each recipient goes ``pending -> sending -> sent | failed``. A batch (one Celery task, or one step of
an inline send) works like this:

1. read its still-pending rows; skip (``skipped``) those whose consent, caps or suppression changed
   since the build; render every message (a template that fails for a recipient fails it, before
   any claim); open ONE SMTP connection (a connect error raises here, before any claim); reserve
   a send slot per message from the per-domain rate limits (``campaigns.services.throttle``);
2. claim the rows in ONE statement (``UPDATE ... SET state='sending' WHERE id IN (SELECT ... FOR
   UPDATE SKIP LOCKED) RETURNING id`` on PostgreSQL; on SQLite the same single UPDATE, which its
   database lock serialises). The claim is committed before the first message goes out, and only
   what this worker claimed is sent: two workers given overlapping rows never both claim one;
3. send the claimed messages over the connection, each at its slot;
4. record every outcome in ONE statement: 2xx ``sent``; 5xx (a refused mailbox) ``failed`` with the
   error, never retried; 4xx (greylisting, "try later") back to ``pending`` and the batch is retried
   (``SendRetryPolicy``); no reply (connection lost, timeout) ``sending`` with the error, and the
   batch stops: its unsent rows go back to ``pending``.

A worker killed mid-batch writes nothing more: its claimed rows stay ``sending``. Each may or may
not have been delivered, so none is ever re-sent automatically: they are reported "in doubt" and
an operator reconciles them in the admin. A kill therefore leaves at most one batch in doubt.
"""
from __future__ import annotations

import contextlib
import logging
import smtplib
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime

from celery import current_app
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpEmailBackend
from django.db import connection as db
from django.db.models import F
from django.utils import timezone

from campaigns.conf import campaigns_settings
from campaigns.models import Campaign, Recipient
from campaigns.selectors import in_values, recent_send_counts
from campaigns.services.build import CampaignStateError, recipient_skip_reason
from campaigns.services.deliverability import (
    AnymailError,
    recipient_delivery_accepted,
    recipients_skip_suppressed,
    send_error_outcome,
    send_error_text,
)
from campaigns.services.local_time import recipients_outside_quiet_hours
from campaigns.services.mime import WireMessage, wire_message
from campaigns.services.render import campaign_templates_validate, message_id_for, recipient_message
from campaigns.services.smtp import smtp_send
from campaigns.services.throttle import ProcessPacer, SendThrottle
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


# The campaign's status is read again every this many messages: a pause or a cancel stops a batch.
HALT_CHECK_EVERY = 50


@dataclass
class _Outcome:
    """What the server said about one message: the row's next state, its error, when."""

    pk: int
    state: str
    error: str = ""
    at: datetime | None = None


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


def _pending(recipient_ids: list[int]) -> list[Recipient]:
    """The still-pending rows among ``recipient_ids``, with their customer and campaign (one query each)."""
    recipients = list(
        Recipient.objects.filter(in_values("id", set(recipient_ids)), state=Recipient.State.PENDING)
        .select_related("customer").order_by("pk")
    )
    campaigns = Campaign.objects.in_bulk({r.campaign_id for r in recipients})
    for recipient in recipients:
        recipient.campaign = campaigns[recipient.campaign_id]
    return recipients


def recipient_batch_send(*, recipient_ids: list[int], resend: bool = False) -> BatchResult:
    """Send the still-pending recipients among ``recipient_ids``: one claim, one SMTP connection and
    one outcome statement per campaign among them (a batch is normally one campaign's).

    ``resend``: a soft-bounce re-send, allowed after the run finished (not when paused/cancelled).
    Raises one of ``TRANSIENT_SEND_ERRORS`` when the batch should be retried later.
    """
    result = BatchResult()
    recipients = _pending(recipient_ids)
    result.not_claimed = len(set(recipient_ids)) - len(recipients)
    recipients, result.skipped = recipients_skip_suppressed(recipients=recipients)
    by_campaign: dict[int, list[Recipient]] = defaultdict(list)
    for recipient in recipients:
        by_campaign[recipient.campaign_id].append(recipient)
    for group in by_campaign.values():
        _campaign_batch_send(group[0].campaign, group, resend=resend, result=result)
    if result.deferred:
        raise TransientSendError(f"{result.deferred} recipient(s) deferred by the server (4xx)")
    return result


def _campaign_batch_send(campaign: Campaign, recipients: list[Recipient], *, resend: bool,
                         result: BatchResult) -> None:
    sendable = (Campaign.Status.SENDING, Campaign.Status.SENT, Campaign.Status.SCHEDULED, Campaign.Status.READY)
    if campaign.status not in (sendable if resend else (Campaign.Status.SENDING,)):
        logger.info("campaign %s is %s: batch not sent", campaign.pk, campaign.status)
        return
    recipients = _skip_at_send_time(campaign, recipients, result)
    connection = get_connection(fail_silently=False)
    messages = _render(recipients, connection, result)
    if not messages:
        return
    settings = campaigns_settings()
    delays = SendThrottle(settings.SEND_RATE_LIMITS).delays(r.email for r, _ in messages)
    now = time.monotonic()
    schedule = sorted(((now + delay, recipient, message) for delay, (recipient, message)
                       in zip(delays, messages, strict=True)), key=lambda entry: entry[0])
    pacer = ProcessPacer(settings.SEND_RATE_PER_SECOND)
    size = max(1, settings.SEND_CLAIM_SIZE)
    connection.open()  # a connect error raises here, before anything is claimed
    try:
        for start in range(0, len(schedule), size):
            if start and _campaign_halted(campaign.pk):
                break
            chunk = schedule[start:start + size]
            claimed = recipients_claim(message_ids={r.pk: r.message_id for _, r, _ in chunk})
            result.not_claimed += len(chunk) - len(claimed)  # another worker got them first
            _send_claimed(campaign, [entry for entry in chunk if entry[1].pk in claimed], connection, pacer, result)
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            connection.close()


def _skip_at_send_time(campaign: Campaign, recipients: list[Recipient], result: BatchResult) -> list[Recipient]:
    """Mark ``skipped`` (one statement per reason) the rows that may no longer be mailed; returns the others."""
    sends = {}
    if campaign.frequency_cap_count:
        sends = recent_send_counts(customer_ids=[r.customer_id for r in recipients], days=campaign.frequency_cap_days)
    by_reason: dict[str, list[int]] = defaultdict(list)
    keep = []
    for recipient in recipients:
        reason = _send_time_skip_reason(recipient, sends)
        if reason:
            by_reason[reason].append(recipient.pk)
        else:
            keep.append(recipient)
    for reason, ids in by_reason.items():
        result.skipped += Recipient.objects.filter(in_values("id", ids), state=Recipient.State.PENDING).update(
            state=Recipient.State.SKIPPED, skip_reason=reason, updated_at=timezone.now()
        )
    return keep


def _render(recipients: list[Recipient], connection, result: BatchResult) -> list[tuple[Recipient, object]]:
    """Every message of the batch, before any claim; a template failing for a recipient fails that
    recipient, visibly, and the send goes on (letting it escape would leave the campaign sending).

    Over Django's own SMTP backend each message is also turned into its envelope and bytes here
    (``campaigns.services.mime``): a message that cannot be encoded (an address Django cannot parse,
    a header with a newline) fails its recipient now instead of stopping the batch mid-send."""
    wire = _sends_wire(connection)
    messages, failures = [], []
    for recipient in recipients:
        recipient.message_id = recipient.message_id or message_id_for(recipient=recipient)
        try:
            message = recipient_message(recipient=recipient, connection=connection)
            messages.append((recipient, wire_message(message) if wire else message))
        except CampaignTemplateError as exc:
            logger.warning("campaign %s recipient %s not rendered: %s", recipient.campaign_id, recipient.pk, exc)
            failures.append(_Outcome(recipient.pk, Recipient.State.FAILED, f"template: {exc}"[:2000], timezone.now()))
        except ValueError as exc:  # BadHeaderError, UnicodeEncodeError, an unparsable address
            logger.warning("campaign %s recipient %s not encoded: %r", recipient.campaign_id, recipient.pk, exc)
            failures.append(_Outcome(recipient.pk, Recipient.State.FAILED, f"message: {exc}"[:2000], timezone.now()))
    result.failed += recipient_outcomes_record(outcomes=failures, from_state=Recipient.State.PENDING)
    return messages


def _sends_wire(connection) -> bool:
    """Django's SMTP backend itself (not a subclass that may sign or rewrite messages): its messages
    go out as prebuilt bytes on its open ``smtplib`` connection."""
    return type(connection) is SmtpEmailBackend


def _send_claimed(campaign: Campaign, schedule: list[tuple], connection, pacer: ProcessPacer,
                  result: BatchResult) -> None:
    """Send the claimed messages at their slots; record every outcome in one statement at the end
    (also when interrupted: unsent rows go back to pending, the one in flight stays in doubt)."""
    outcomes: list[_Outcome] = []
    attempted: set[int] = set()
    error: BaseException | None = None
    try:
        for index, (due, recipient, message) in enumerate(schedule):
            if index and index % HALT_CHECK_EVERY == 0 and _campaign_halted(campaign.pk):
                break
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            pacer.wait()
            attempted.add(recipient.pk)  # from here on, only the server's reply may move this row
            outcome, error = _send_message(recipient, message, connection)
            outcomes.append(outcome)
            if error is not None:
                break
    finally:
        recipient_outcomes_record(outcomes=outcomes, from_state=Recipient.State.SENDING)
        _release([r.pk for _, r, _ in schedule if r.pk not in attempted])
    for outcome in outcomes:
        if outcome.state == Recipient.State.SENT:
            result.sent += 1
        elif outcome.state == Recipient.State.FAILED:
            result.failed += 1
        elif outcome.state == Recipient.State.PENDING:
            result.deferred += 1
        else:
            result.in_doubt += 1
    if error is not None:
        raise error


def _send_message(recipient: Recipient, message, connection) -> tuple[_Outcome, BaseException | None]:
    """One message over the open connection: its outcome, and the error that must stop the batch."""
    pk = recipient.pk
    try:
        delivered = _deliver(message, connection)
    except smtplib.SMTPException as exc:
        code = _reply_code(exc)
        if code is not None and 500 <= code < 600:
            return _Outcome(pk, Recipient.State.FAILED, f"{code}: {exc}"[:2000], timezone.now()), None
        if code is not None and 400 <= code < 500:
            return _Outcome(pk, Recipient.State.PENDING, f"{code}: {exc}"[:2000]), None
        return _Outcome(pk, Recipient.State.SENDING, f"in doubt: {exc!r}"[:2000]), exc
    except AnymailError as exc:  # a provider's API (before OSError: requests' errors are OSErrors)
        outcome = send_error_outcome(exc)
        if outcome == "failed":
            return _Outcome(pk, Recipient.State.FAILED, send_error_text(exc), timezone.now()), None
        if outcome == "deferred":
            return _Outcome(pk, Recipient.State.PENDING, send_error_text(exc)), None
        in_doubt = ConnectionError(send_error_text(exc)[:200])
        in_doubt.__cause__ = exc
        return _Outcome(pk, Recipient.State.SENDING, f"in doubt: {send_error_text(exc)}"[:2000]), in_doubt
    except OSError as exc:  # connection reset, timeout: no reply, so the outcome is unknown
        return _Outcome(pk, Recipient.State.SENDING, f"in doubt: {exc!r}"[:2000]), exc
    if not delivered:
        return _Outcome(pk, Recipient.State.FAILED, "no valid address", timezone.now()), None
    recipient_delivery_accepted(recipient=recipient, message=message, esp=getattr(connection, "esp_name", ""))
    return _Outcome(pk, Recipient.State.SENT, "", timezone.now()), None


def _deliver(message, connection) -> int:
    """Messages the server accepted (0 or 1); raises what ``send_messages`` raises (fail_silently is off)."""
    if not isinstance(message, WireMessage):
        return connection.send_messages([message])
    if not message.recipients:
        return 0
    if connection.connection is None:
        connection.open()
    smtp_send(connection.connection, message.sender, message.recipients, message.data)
    return 1


def _campaign_halted(campaign_id: int) -> bool:
    return Campaign.objects.filter(pk=campaign_id).exclude(status=Campaign.Status.SENDING).exists()


# --- the claim and the outcomes: one statement each ----------------------------------------------

_TABLE = Recipient._meta.db_table

_CLAIM_POSTGRESQL = f"""
UPDATE {_TABLE} AS r
   SET state = %s, claimed_at = %s, updated_at = %s, attempts = r.attempts + 1,
       message_id = CASE WHEN r.message_id = '' THEN v.message_id ELSE r.message_id END
  FROM unnest(%s::bigint[], %s::text[]) AS v(id, message_id)
 WHERE r.id = v.id AND r.state = %s
   AND r.id IN (SELECT id FROM {_TABLE} WHERE id = ANY(%s::bigint[]) AND state = %s FOR UPDATE SKIP LOCKED)
RETURNING r.id"""

_OUTCOMES_POSTGRESQL = f"""
UPDATE {_TABLE} AS r
   SET state = v.state, error = v.error, updated_at = %s,
       sent_at = CASE WHEN v.state = %s THEN v.at ELSE r.sent_at END,
       failed_at = CASE WHEN v.state = %s THEN v.at ELSE r.failed_at END
  FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[]) AS v(id, state, error, at)
 WHERE r.id = v.id AND r.state = %s"""

SQLITE_CHUNK = 2000  # ids per statement on SQLite (three bound values each)


def recipients_claim(*, message_ids: dict[int, str]) -> set[int]:
    """Claim the still-pending rows among ``message_ids`` (id -> Message-ID to store if the row has
    none) for sending, in one committed statement; returns the ids this call claimed.

    Rows another worker holds or already moved are skipped, never waited for, never claimed twice.
    """
    if not message_ids:
        return set()
    now = db.ops.adapt_datetimefield_value(timezone.now())
    pending, sending = Recipient.State.PENDING, Recipient.State.SENDING
    ids = sorted(message_ids)
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            cursor.execute(_CLAIM_POSTGRESQL, [sending, now, now, ids, [message_ids[i] for i in ids], pending,
                                               ids, pending])
            return {row[0] for row in cursor.fetchall()}
        claimed: set[int] = set()
        for start in range(0, len(ids), SQLITE_CHUNK):
            chunk = ids[start:start + SQLITE_CHUNK]
            cases = " ".join(["WHEN %s THEN %s"] * len(chunk))
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"UPDATE {_TABLE} SET state = %s, claimed_at = %s, updated_at = %s, attempts = attempts + 1, "
                f"message_id = CASE WHEN message_id = '' THEN CASE id {cases} END ELSE message_id END "
                f"WHERE id IN ({marks}) AND state = %s RETURNING id",
                [sending, now, now, *[v for i in chunk for v in (i, message_ids[i])], *chunk, pending],
            )
            claimed.update(row[0] for row in cursor.fetchall())
        return claimed


def recipient_outcomes_record(*, outcomes: list[_Outcome], from_state: str) -> int:
    """Write the outcomes of a batch in one statement, to rows still in ``from_state``; returns the count."""
    if not outcomes:
        return 0
    now = timezone.now()
    if db.vendor == "postgresql":
        with db.cursor() as cursor:
            cursor.execute(_OUTCOMES_POSTGRESQL, [
                now, Recipient.State.SENT, Recipient.State.FAILED, [o.pk for o in outcomes],
                [o.state for o in outcomes], [o.error for o in outcomes], [o.at for o in outcomes], from_state,
            ])
            return cursor.rowcount
    # SQLite: one bulk UPDATE per kind of outcome (each touches only its own timestamp).
    stamp = {Recipient.State.SENT: "sent_at", Recipient.State.FAILED: "failed_at"}
    groups: dict[str | None, list[Recipient]] = defaultdict(list)
    for o in outcomes:
        row = Recipient(pk=o.pk, state=o.state, error=o.error, updated_at=now)
        if o.state in stamp:
            setattr(row, stamp[o.state], o.at)
        groups[stamp.get(o.state)].append(row)
    written = 0
    for field, rows in groups.items():
        fields = ["state", "error", "updated_at"] + ([field] if field else [])
        written += Recipient.objects.filter(state=from_state).bulk_update(rows, fields)
    return written


def _release(recipient_ids: list[int]) -> None:
    """Claimed rows that were never attempted (the batch stopped): pending again, the claim undone."""
    if recipient_ids:
        Recipient.objects.filter(in_values("id", recipient_ids), state=Recipient.State.SENDING).update(
            state=Recipient.State.PENDING, attempts=F("attempts") - 1, updated_at=timezone.now()
        )


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

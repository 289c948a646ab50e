"""Batched sending: one claim statement, one SMTP connection and one outcome statement per batch.

Against a real SMTP server (aiosmtpd); the concurrency tests need PostgreSQL (``SKIP LOCKED``).
"""
from __future__ import annotations

import json
import smtplib
import threading

import pytest
from django.db import connection, connections, transaction

from campaigns.models import Campaign, Recipient
from campaigns.services.build import campaign_build
from campaigns.services.send import (
    TransientSendError,
    campaign_send,
    recipient_batch_send,
    recipients_claim,
)
from tests.campaigns.killed_send import campaign_ready, kill_send_at_third_message, manage, send_env
from tests.campaigns.smtp_sink import SinkHandler, SmtpSink

needs_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED needs PostgreSQL")


class CountingHandler(SinkHandler):
    """The sink handler that also counts SMTP connections (sessions) and can drop one mid-DATA."""

    def __init__(self, pipelining: bool = False):
        super().__init__()
        self.sessions: list = []  # kept, so that ids are never reused
        self.drop_on: set[str] = set()  # recipients whose DATA closes the connection without a reply
        self.pipelining = pipelining  # advertise PIPELINING: the client sends MAIL, RCPT, DATA together

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions.append(session)
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    async def handle_DATA(self, server, session, envelope):
        if self.drop_on & set(envelope.rcpt_tos):
            self.drop_on -= set(envelope.rcpt_tos)
            await super().handle_DATA(server, session, envelope)  # received: the risky case
            server.transport.close()
            return "421 closing"  # never reaches the client
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture(params=[False, True], ids=["one-command-at-a-time", "pipelined"])
def counting_sink(request, settings):
    """A real SMTP server that counts connections; Django's SMTP backend points at it. Each test
    runs against a server without PIPELINING (smtplib's ``sendmail``) and one with it."""
    from django.core.mail.utils import DNS_NAME

    DNS_NAME._fqdn = "localhost"  # skip a slow reverse DNS lookup in EHLO
    sink = SmtpSink()
    sink.handler = sink.controller.handler = CountingHandler(pipelining=request.param)
    with sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", sink.port, False
        settings.EMAIL_HOST_USER, settings.EMAIL_TIMEOUT = "", 10
        settings.CAMPAIGNS = {"SEND_RETRY_BACKOFF_SECONDS": 0}
        yield sink.handler


def _built(campaign, make_customers, n: int) -> Campaign:
    make_customers(n)
    campaign_build(campaign=campaign)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    campaign.refresh_from_db()
    return campaign


def _pending_ids(campaign) -> list[int]:
    return list(Recipient.objects.filter(campaign=campaign, state=Recipient.State.PENDING)
                .order_by("pk").values_list("pk", flat=True))


@pytest.mark.django_db
def test_each_batch_uses_one_smtp_connection(campaign, make_customers, counting_sink, settings):
    """10 recipients in batches of 4 and claims of 3: three connections, ten messages, one each."""
    # given
    _built(campaign, make_customers, 10)
    settings.CAMPAIGNS = {"SEND_BATCH_SIZE": 4, "SEND_CLAIM_SIZE": 3, "SEND_RETRY_BACKOFF_SECONDS": 0}
    # when
    report = campaign_send(campaign=campaign)
    # then
    assert (report.batches, report.sent, report.in_doubt, report.pending) == (3, 10, 0, 0)
    assert len(counting_sink.sessions) == 3
    assert sorted(counting_sink.count_by_recipient().values()) == [1] * 10


@pytest.mark.django_db
def test_a_refused_recipient_fails_alone_and_the_rest_of_the_batch_is_sent(campaign, make_customers, counting_sink):
    """550 for one address: that row failed with the server's text; the others of the batch sent;
    a 451 for another: pending again, and the batch raises so that it is retried."""
    # given
    _built(campaign, make_customers, 5)
    refused, greylisted = Recipient.objects.order_by("pk")[1:3]
    counting_sink.rcpt_replies[refused.email] = ["550 5.1.1 No such user"]
    counting_sink.rcpt_replies[greylisted.email] = ["451 4.7.1 Greylisted"]
    # when
    with pytest.raises(TransientSendError):
        recipient_batch_send(recipient_ids=_pending_ids(campaign))
    # then
    states = dict(Recipient.objects.values_list("pk", "state"))
    refused.refresh_from_db()
    greylisted.refresh_from_db()
    assert refused.state == Recipient.State.FAILED and refused.error.startswith("550") and refused.failed_at
    assert (greylisted.state, greylisted.attempts) == (Recipient.State.PENDING, 1) and "451" in greylisted.error
    assert sorted(states.values()).count(Recipient.State.SENT) == 3
    assert len(counting_sink.sessions) == 1
    # and the retry sends only the greylisted one
    assert recipient_batch_send(recipient_ids=list(states)).sent == 1
    assert counting_sink.count_by_recipient()[greylisted.email] == 1
    assert refused.email not in counting_sink.count_by_recipient()


@pytest.mark.django_db
def test_a_message_that_cannot_be_encoded_fails_its_recipient_before_the_claim(campaign, make_customers,
                                                                                counting_sink):
    """An address Django cannot parse: that row failed at render time with the reason, never claimed
    (no attempt), nothing in doubt; the rest of the batch is sent."""
    # given
    _built(campaign, make_customers, 3)
    bad = Recipient.objects.order_by("pk")[1]
    Recipient.objects.filter(pk=bad.pk).update(email="two@@example.com")
    # when
    result = recipient_batch_send(recipient_ids=_pending_ids(campaign))
    # then
    bad.refresh_from_db()
    assert (result.sent, result.failed, result.in_doubt) == (2, 1, 0)
    assert (bad.state, bad.attempts) == (Recipient.State.FAILED, 0)
    assert bad.error.startswith("message: ") and "two@@example.com" in bad.error
    assert sorted(counting_sink.count_by_recipient().values()) == [1, 1]


@pytest.mark.django_db
def test_a_lost_connection_leaves_only_the_message_in_flight_in_doubt(campaign, make_customers, counting_sink,
                                                                      settings):
    """The server takes message 2 and hangs up: row 2 stays 'sending' (in doubt, never re-sent); the
    rest of the claim goes back to pending (its attempt undone) and the retry sends it."""
    # given
    _built(campaign, make_customers, 5)
    settings.CAMPAIGNS = {"SEND_CLAIM_SIZE": 5}
    rows = list(Recipient.objects.order_by("pk"))
    counting_sink.drop_on = {rows[1].email}
    ids = [r.pk for r in rows]
    # when
    with pytest.raises(smtplib.SMTPServerDisconnected):
        recipient_batch_send(recipient_ids=ids)
    # then
    states = dict(Recipient.objects.values_list("pk", "state"))
    assert states[rows[0].pk] == Recipient.State.SENT
    assert states[rows[1].pk] == Recipient.State.SENDING
    assert [states[r.pk] for r in rows[2:]] == [Recipient.State.PENDING] * 3
    assert set(Recipient.objects.filter(pk__in=ids[2:]).values_list("attempts", flat=True)) == {0}
    assert Recipient.objects.get(pk=rows[1].pk).error.startswith("in doubt")
    # when: the batch is retried
    assert recipient_batch_send(recipient_ids=ids).sent == 3
    # then: everyone once, the in-doubt one not again
    counts = counting_sink.count_by_recipient()
    assert sorted(counts.values()) == [1] * 5
    assert Recipient.objects.get(pk=rows[1].pk).state == Recipient.State.SENDING


@pytest.mark.django_db
def test_a_claim_takes_only_pending_rows_once_and_stores_their_message_ids(campaign, make_customers):
    # given
    _built(campaign, make_customers, 4)
    ids = _pending_ids(campaign)
    Recipient.objects.filter(pk=ids[0]).update(state=Recipient.State.SENT)
    Recipient.objects.filter(pk=ids[1]).update(message_id="<kept@example.com>")
    # when
    first = recipients_claim(message_ids={pk: f"<m{pk}@example.com>" for pk in ids})
    second = recipients_claim(message_ids={pk: f"<m{pk}@example.com>" for pk in ids})
    # then
    assert first == set(ids[1:]) and second == set()
    rows = {r.pk: r for r in Recipient.objects.filter(pk__in=ids)}
    assert rows[ids[1]].message_id == "<kept@example.com>"
    assert rows[ids[2]].message_id == f"<m{ids[2]}@example.com>"
    assert all(rows[pk].state == Recipient.State.SENDING and rows[pk].attempts == 1 and rows[pk].claimed_at
               for pk in ids[1:])


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_claims_never_overlap(campaign, make_customers):
    """A claim meets another one still in flight: it skips the rows that one holds (SKIP LOCKED),
    without waiting for it, and takes the rest. Then two threads (two PostgreSQL connections) claim
    the rest in small overlapping bites at once. Every row is claimed exactly once.

    The overlap is forced (the first claim's transaction is held open while the second runs), not
    left to the scheduler: which thread wins the race of the second part is not asserted."""
    # given
    _built(campaign, make_customers, 200)
    ids = _pending_ids(campaign)
    first_ids, window = ids[:60], ids[30:90]  # the second claim wants 30 rows the first one holds
    second: set[int] = set()

    def claim_window() -> None:
        try:
            second.update(recipients_claim(message_ids={pk: f"<{pk}@x>" for pk in window}))
        finally:
            connections.close_all()

    # when: the first claim holds its rows (uncommitted) while the second one runs
    with transaction.atomic():
        first = recipients_claim(message_ids={pk: f"<{pk}@x>" for pk in first_ids})
        other = threading.Thread(target=claim_window)
        other.start()
        other.join(60)  # a claim that waited for the held rows would still be running here
        second_finished_while_first_held = not other.is_alive()
    other.join(60)
    # then
    assert first == set(first_ids)
    assert second_finished_while_first_held
    assert second == set(ids[60:90])  # none of the held rows, all of the free ones

    # when: two threads race over the rest in overlapping windows
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def claimer(name: str) -> None:
        try:
            start.wait()
            for offset in range(0, len(ids), 10):
                window = ids[offset:offset + 40]  # overlapping windows: both threads want the same rows
                claimed[name].extend(recipients_claim(message_ids={pk: f"<{pk}@x>" for pk in window}))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claimer, args=(name,)) for name in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # then: no row twice (within a thread or across), none lost
    everything = sorted([*first, *second, *claimed["a"], *claimed["b"]])
    assert everything == ids
    assert Recipient.objects.filter(pk__in=ids, state=Recipient.State.SENDING, attempts=1).count() == len(ids)


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_the_same_batch_mail_each_recipient_once(campaign, make_customers, counting_sink,
                                                                     settings):
    """A redelivered task next to the original: both send the same ids at once; nobody gets two."""
    # given
    _built(campaign, make_customers, 60)
    settings.CAMPAIGNS = {"SEND_CLAIM_SIZE": 5}
    ids = _pending_ids(campaign)
    results = []
    start = threading.Barrier(2)

    def worker() -> None:
        try:
            start.wait()
            results.append(recipient_batch_send(recipient_ids=ids))
        finally:
            connections.close_all()

    # when
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    # then
    assert sorted(counting_sink.count_by_recipient().values()) == [1] * 60
    assert sum(r.sent for r in results) == 60
    assert Recipient.objects.filter(state=Recipient.State.SENT).count() == 60


KILL_STATES = """
import json
from campaigns.models import Recipient
print(json.dumps({r.email: [r.state, r.attempts] for r in Recipient.objects.order_by("pk")}))
"""


@pytest.mark.timeout(420)
def test_a_batch_killed_mid_send_stays_in_doubt_and_is_never_resent(tmp_path):
    """Claims of 4: the sender is SIGKILLed while the server holds message 3. The whole claim (rows
    1-4: two delivered and recorded nowhere, one in flight, one not yet sent) stays 'sending', in
    doubt; the re-run sends rows 5 and 6 only. Nobody ever gets two messages."""
    with SmtpSink() as sink:
        env = send_env(tmp_path, sink, claim_size=4)
        campaign_id = campaign_ready(env)
        # when
        kill_send_at_third_message(env, campaign_id, sink)
        rerun = manage(env, "campaign", "send", campaign_id)
        # then
        report = json.loads(rerun.stdout)
        assert (report["sent"], report["in_doubt"], report["pending"]) == (2, 4, 0)
        assert "in doubt" in rerun.stderr
        states = json.loads(manage(env, "shell", "-c", KILL_STATES).stdout.strip().splitlines()[-1])
        counts = sink.handler.count_by_recipient()
        assert set(counts.values()) == {1}, counts  # nobody twice, whatever was re-run
        emails = list(states)
        assert [states[e][0] for e in emails] == ["sending"] * 4 + ["sent"] * 2
        assert [counts[e] for e in emails] == [1, 1, 1, 0, 1, 1]  # the fourth was claimed, never sent
        assert all(states[e][1] == 1 for e in emails)  # one attempt each: nothing claimed twice

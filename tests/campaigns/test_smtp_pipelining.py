"""``smtp_send``: MAIL, RCPT and DATA in one write when the server offers PIPELINING, and in every
outcome the same result and exceptions as ``smtplib``'s ``sendmail`` (against a real aiosmtpd)."""
from __future__ import annotations

import smtplib

import pytest

from campaigns.services.smtp import smtp_send
from tests.campaigns.smtp_sink import SinkHandler, SmtpSink

MESSAGE = b"Subject: hi\r\nMessage-ID: <1@example.com>\r\n\r\nline one\r\n.starts with a dot\r\n..two dots\r\nend"


class RefusingHandler(SinkHandler):
    """Refuses what it is told to (a sender, a DATA), and can offer PIPELINING."""

    def __init__(self, pipelining: bool):
        super().__init__()
        self.pipelining = pipelining
        self.mail_replies: dict[str, str] = {}
        self.data_reply = ""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if address in self.mail_replies:
            return self.mail_replies[address]
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        return await super().handle_DATA(server, session, envelope)


class RecordingSMTP(smtplib.SMTP):
    """smtplib's client, remembering each write it makes."""

    def __init__(self, *args, **kwargs):
        self.writes: list[bytes | str] = []
        super().__init__(*args, **kwargs)

    def send(self, s):
        self.writes.append(s)
        super().send(s)


@pytest.fixture(params=[True, False], ids=["pipelined", "sendmail"])
def server(request):
    sink = SmtpSink()
    sink.handler = sink.controller.handler = RefusingHandler(pipelining=request.param)
    with sink:
        client = RecordingSMTP("127.0.0.1", sink.port, local_hostname="localhost", timeout=10)
        yield sink.handler, client
        client.close()


def _outcome(call):
    try:
        return call()
    except smtplib.SMTPResponseException as exc:
        return type(exc), exc.smtp_code
    except smtplib.SMTPRecipientsRefused as exc:
        return type(exc), exc.recipients


def test_a_message_is_delivered_with_dots_escaped_and_one_write_for_the_commands(server):
    """The server receives the bytes sent (a leading dot survives the transparency rule); when
    pipelined, MAIL, RCPT and DATA leave in one write, then the message in a second."""
    handler, client = server
    # when
    refused = smtp_send(client, "news@example.com", ["ada@example.com"], MESSAGE)
    # then
    assert refused == {}
    assert handler.messages[0].get_payload() == "line one\r\n.starts with a dot\r\n..two dots\r\nend\r\n"
    if handler.pipelining:
        first = client.writes[-2].decode() if isinstance(client.writes[-2], bytes) else client.writes[-2]
        assert first.splitlines()[0].startswith("mail from:<news@example.com> size=")
        assert first.splitlines()[1:] == ["rcpt to:<ada@example.com>", "data"]
        assert client.writes[-1].endswith(b"\r\nend\r\n.\r\n")


@pytest.mark.parametrize("reply", ["550 5.1.1 No such user", "451 4.7.1 Greylisted"])
def test_a_refused_recipient_raises_as_sendmail_and_the_connection_goes_on(server, reply):
    handler, client = server
    # given
    handler.rcpt_replies["gone@example.com"] = [reply]
    # when
    outcome = _outcome(lambda: smtp_send(client, "news@example.com", ["gone@example.com"], MESSAGE))
    # then
    assert outcome == (smtplib.SMTPRecipientsRefused, {"gone@example.com": (int(reply[:3]), reply[4:].encode())})
    assert smtp_send(client, "news@example.com", ["ada@example.com"], MESSAGE) == {}
    assert len(handler.messages) == 1


def test_one_refused_recipient_of_two_is_reported_and_the_other_gets_the_message(server):
    handler, client = server
    handler.rcpt_replies["gone@example.com"] = ["550 5.1.1 No such user"]
    refused = smtp_send(client, "news@example.com", ["gone@example.com", "ada@example.com"], MESSAGE)
    assert refused == {"gone@example.com": (550, b"5.1.1 No such user")}
    assert len(handler.messages) == 1


@pytest.mark.parametrize("reply", ["553 5.7.1 Sender rejected", "451 4.3.0 Try later"])
def test_a_refused_sender_raises_as_sendmail_and_the_connection_goes_on(server, reply):
    handler, client = server
    handler.mail_replies["bad@example.com"] = reply
    outcome = _outcome(lambda: smtp_send(client, "bad@example.com", ["ada@example.com"], MESSAGE))
    assert outcome == (smtplib.SMTPSenderRefused, int(reply[:3]))
    assert smtp_send(client, "news@example.com", ["ada@example.com"], MESSAGE) == {}
    assert len(handler.messages) == 1


@pytest.mark.parametrize("reply", ["554 5.6.0 Content rejected", "452 4.3.1 Out of memory"])
def test_refused_data_raises_as_sendmail_and_the_connection_goes_on(server, reply):
    handler, client = server
    handler.data_reply = reply
    outcome = _outcome(lambda: smtp_send(client, "news@example.com", ["ada@example.com"], MESSAGE))
    assert outcome == (smtplib.SMTPDataError, int(reply[:3]))
    handler.data_reply = ""
    assert smtp_send(client, "news@example.com", ["ada@example.com"], MESSAGE) == {}
    assert len(handler.messages) == 1


def test_a_server_that_hangs_up_raises_server_disconnected(server):
    """421 to RCPT: the client closes, as sendmail does; the next send finds no connection."""
    handler, client = server
    handler.rcpt_replies["ada@example.com"] = ["421 4.3.2 Shutting down"]
    outcome = _outcome(lambda: smtp_send(client, "news@example.com", ["ada@example.com"], MESSAGE))
    assert outcome == (smtplib.SMTPRecipientsRefused, {"ada@example.com": (421, b"4.3.2 Shutting down")})
    with pytest.raises(smtplib.SMTPServerDisconnected):
        smtp_send(client, "news@example.com", ["ada@example.com"], MESSAGE)
    assert handler.messages == []

"""One message over an open ``smtplib`` connection, pipelined (RFC 2920) when the server offers it.

``smtplib.SMTP.sendmail`` sends MAIL, RCPT and DATA one at a time and waits for each reply: four
round trips a message, each a wake-up of both ends. Production MTAs and ESP relays advertise
PIPELINING, which lets a client send MAIL, every RCPT and DATA together and then read their replies
in order. ``smtp_send`` does that, and behaves like ``sendmail`` in every other way: same commands
and SIZE option, same exceptions for the same replies (so callers cannot tell the difference), and
on a server without PIPELINING it is ``sendmail`` itself.
"""
from __future__ import annotations

import contextlib
import re
import smtplib

CRLF = b"\r\n"
_LINE_START_DOT = re.compile(rb"(?m)^\.")


def smtp_send(smtp: smtplib.SMTP, sender: str, recipients: list[str], data: bytes) -> dict[str, tuple[int, bytes]]:
    """Send ``data`` (CRLF line ends) from ``sender`` to ``recipients``: the refused recipients, as
    ``sendmail`` returns them. Raises ``sendmail``'s exceptions (``SMTPSenderRefused``,
    ``SMTPRecipientsRefused``, ``SMTPDataError``, ``SMTPServerDisconnected``)."""
    smtp.ehlo_or_helo_if_needed()
    if not (smtp.does_esmtp and smtp.has_extn("pipelining")):
        return smtp.sendmail(sender, recipients, data)
    options = f" size={len(data)}" if smtp.has_extn("size") else ""
    commands = [f"mail from:{smtplib.quoteaddr(sender)}{options}"]
    commands += [f"rcpt to:{smtplib.quoteaddr(address)}" for address in recipients]
    smtp.send("".join(f"{command}\r\n" for command in [*commands, "data"]))
    code, reply = smtp.getreply()
    if code != 250:
        if code == 421:  # the server is closing: nothing more will come
            smtp.close()
        else:
            with contextlib.suppress(smtplib.SMTPServerDisconnected):
                _end_transaction(smtp, [smtp.getreply()[0] for _ in range(len(recipients) + 1)][-1])
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    refused = {}
    for address in recipients:
        code, reply = smtp.getreply()
        if code not in (250, 251):
            refused[address] = (code, reply)
        if code == 421:
            smtp.close()
            raise smtplib.SMTPRecipientsRefused(refused)
    code, reply = smtp.getreply()
    if len(refused) == len(recipients):
        _end_transaction(smtp, code)
        raise smtplib.SMTPRecipientsRefused(refused)
    if code != 354:
        _end_transaction(smtp, code)
        raise smtplib.SMTPDataError(code, reply)
    message = _LINE_START_DOT.sub(b"..", data)  # smtplib.SMTP.data's transparency and ending
    smtp.send(message + (b"" if message.endswith(CRLF) else CRLF) + b"." + CRLF)
    code, reply = smtp.getreply()
    if code != 250:
        _end_transaction(smtp, code)
        raise smtplib.SMTPDataError(code, reply)
    return refused


def _end_transaction(smtp: smtplib.SMTP, data_code: int) -> None:
    """After a refusal: reset the transaction as ``sendmail`` does (RSET; a 421 closes instead). A
    server that answered 354 to the pipelined DATA all the same first gets an empty message."""
    if data_code == 421:
        smtp.close()
        return
    if data_code == 354:
        smtp.send(b"." + CRLF)
        smtp.getreply()
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        smtp.rset()

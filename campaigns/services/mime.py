"""A campaign message as the bytes Django's SMTP backend puts on the wire, built directly.

Django builds each message as a tree of ``email.mime`` objects and serialises it with the ``email``
package's generator (``message.message().as_bytes(linesep="\\r\\n")``): at hundreds of messages per
second that generator is a worker's largest single cost. A campaign message always has one shape:
``multipart/alternative`` with a UTF-8 ``text/plain`` and ``text/html`` part and a handful of
headers. ``message_bytes`` writes that shape directly and reproduces the generator's output byte
for byte (header folding at 78 columns and RFC 2047 words through the same ``email.header`` calls,
``7bit``/``8bit`` transfer encodings, CRLF line ends, the same boundary format), so what a
receiving server sees does not change; ``tests/campaigns/test_mime.py`` compares the two on hostile
input. Anything else (attachments, cc, reply-to, an empty text part, a line over 998 bytes that
needs quoted-printable, another charset) goes through Django's own ``message()``.
"""
from __future__ import annotations

import random
import re
import sys
from dataclasses import dataclass
from email.header import Header
from email.utils import formatdate, make_msgid
from functools import lru_cache

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.message import RFC5322_EMAIL_LINE_LENGTH_LIMIT, forbid_multi_line_headers, sanitize_address
from django.core.mail.utils import DNS_NAME

CRLF = "\r\n"
MAX_HEADER_LINE = 78  # the generator's policy (compat32) folds header lines longer than this
# A value the folder leaves as it is when its line fits: printable ASCII words, single spaces.
_UNFOLDED = re.compile(r"[!-~]+(?: [!-~]+)*\Z")
_SET_BY_SHAPE = {"from", "to", "cc", "reply-to", "subject", "content-type", "mime-version",
                 "content-transfer-encoding"}
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))  # email.generator's boundary: 15 "=", these digits, "=="
# A bare address that ``sanitize_address`` returns unchanged: a dot-atom local part and an ASCII
# domain of 1-63 character labels (no display name, nothing to encode or punycode).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_BARE_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]{{1,63}}(?:\.[A-Za-z0-9-]{{1,63}})*")


@dataclass(frozen=True)
class WireMessage:
    """What an SMTP transaction sends: the envelope (``MAIL FROM``, ``RCPT TO``) and the data."""

    sender: str
    recipients: list[str]
    data: bytes


def wire_message(message: EmailMessage) -> WireMessage:
    """``message`` as Django's SMTP backend would send it: sanitised envelope addresses and the bytes.

    Raises what Django would raise while sending it (``ValueError`` for an address it cannot parse,
    ``BadHeaderError`` for a header with a newline, ``UnicodeEncodeError`` for unencodable text),
    so a caller can do this before anything is claimed.
    """
    encoding = message.encoding or settings.DEFAULT_CHARSET
    return WireMessage(
        sender=_sender(message.from_email, encoding),
        recipients=[address if isinstance(address, str) and _BARE_ADDRESS.fullmatch(address)
                    else sanitize_address(address, encoding) for address in message.recipients()],
        data=message_bytes(message),
    )


@lru_cache(maxsize=32)
def _sender(address: str, encoding: str) -> str:
    return sanitize_address(address, encoding)  # one From for a whole campaign: parsed once


def message_bytes(message: EmailMessage) -> bytes:
    """``message.message().as_bytes(linesep="\\r\\n")``, written directly when the message has a
    campaign's shape (the same bytes but for the random boundary and the current ``Date``)."""
    data = _alternative_bytes(message)
    return data if data is not None else message.message().as_bytes(linesep=CRLF)


def header_line(name: str, value: str) -> str:
    """One header as the generator writes it: ``Header(value).encode()`` folded at 78 columns,
    skipped when the value is plain and its line fits (the fold would return it unchanged)."""
    if len(name) + 2 + len(value) <= MAX_HEADER_LINE and _UNFOLDED.match(value):
        return f"{name}: {value}{CRLF}"
    folded = Header(value, header_name=name).encode(linesep=CRLF, maxlinelen=MAX_HEADER_LINE)
    return f"{name}: {folded}{CRLF}"


def _header_line(name: str, value: str, encoding: str) -> str:
    """What Django's ``msg[name] = value`` then the generator make of a header: a plain value whose
    line fits is written as it is (Django's checks and ``Header`` would return it unchanged)."""
    if len(name) + 2 + len(value) <= MAX_HEADER_LINE and _UNFOLDED.match(value):
        return f"{name}: {value}{CRLF}"
    return header_line(*forbid_multi_line_headers(name, value, encoding))


def _alternative_bytes(message: EmailMessage) -> bytes | None:
    """The bytes of a text + HTML message, or None when it has another shape (Django builds it then)."""
    encoding = message.encoding or settings.DEFAULT_CHARSET
    if (type(message).message is not EmailMultiAlternatives.message or encoding != "utf-8"
            or message.attachments or message.cc or message.reply_to or not message.to or not message.body
            or len(message.alternatives) != 1 or message.alternatives[0][1] != "text/html"
            or _SET_BY_SHAPE & {name.lower() for name in message.extra_headers}):
        return None
    text = _text_part(message.body, "plain")
    html = _text_part(message.alternatives[0][0], "html")
    if text is None or html is None:
        return None
    boundary = _boundary(text, html)
    # The generator folds this line (83 columns) after the ";", always the same way.
    content_type = f'Content-Type: multipart/alternative;{CRLF} boundary="{boundary}"{CRLF}MIME-Version: 1.0{CRLF}'
    headers = [("Subject", message.subject), ("From", message.from_email),
               ("To", ", ".join(str(address) for address in message.to))]
    names = {name.lower() for name in message.extra_headers}
    if "date" not in names:
        headers.append(("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)))
    if "message-id" not in names:
        headers.append(("Message-ID", make_msgid(domain=DNS_NAME)))
    headers += list(message.extra_headers.items())
    head = content_type + "".join(_header_line(name, str(value), encoding) for name, value in headers)
    delimiter = f"--{boundary}".encode()
    return b"".join([
        head.encode("ascii"), b"\r\n", delimiter, b"\r\n", text, b"\r\n", delimiter, b"\r\n", html, b"\r\n",
        delimiter, b"--\r\n",
    ])


def _text_part(content: str, subtype: str) -> bytes | None:
    """A UTF-8 text part (headers, blank line, body with CRLF line ends), or None when a line is over
    998 bytes: Django then switches the part to quoted-printable."""
    data = str(content).encode("utf-8")  # a lone surrogate raises here, as it does in Django
    if max(map(len, data.splitlines()), default=0) > RFC5322_EMAIL_LINE_LENGTH_LIMIT:
        return None
    encoding = "7bit" if data.isascii() else "8bit"
    head = (f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}MIME-Version: 1.0{CRLF}'
            f"Content-Transfer-Encoding: {encoding}{CRLF}{CRLF}")
    return head.encode("ascii") + _crlf(data)


def _crlf(data: bytes) -> bytes:
    """Every line end (CRLF, CR or LF) as CRLF, as the generator writes them."""
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data.replace(b"\n", b"\r\n")


def _boundary(*parts: bytes) -> str:
    """A boundary in the generator's format that occurs in no part."""
    while True:
        boundary = f"{'=' * 15}{random.randrange(sys.maxsize):0{_BOUNDARY_DIGITS}d}=="
        marker = f"--{boundary}".encode()
        if not any(marker in part for part in parts):
            return boundary

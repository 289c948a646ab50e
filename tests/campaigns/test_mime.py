"""The bytes sending puts on the wire are exactly what Django's SMTP backend would have sent.

``campaigns.services.mime`` writes a campaign message directly instead of through the ``email``
package's generator; these tests hold it to Django's own output byte for byte (the boundary is
random, so both draw it from the same seed; the Date header is the clock's), on hostile input.
"""
from __future__ import annotations

import random
import re
from email import message_from_bytes, policy

import pytest
from django.core.mail import BadHeaderError, EmailMessage, EmailMultiAlternatives
from django.core.mail.message import sanitize_address
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from campaigns.services.mime import _alternative_bytes, message_bytes, wire_message
from campaigns.services.render import message_id_for, recipient_message

LIST_UNSUBSCRIBE = "<https://crm.example.com/t/u/WzEyMzQ1Nl0:1tXyZa:abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ/>"


def _message(subject="Your picks", text="Hi Ada\n", html="<p>Hi Ada</p>", to="ada@example.com",
             from_email="Tailored <hello@example.com>", **headers) -> EmailMultiAlternatives:
    headers = {"List-Unsubscribe": LIST_UNSUBSCRIBE, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
               "Message-ID": "<c1.r1.7.0123456789abcdef@example.com>", "X-Campaign-ID": "1", **headers}
    message = EmailMultiAlternatives(subject=subject, body=text, from_email=from_email, to=[to], headers=headers)
    message.attach_alternative(html, "text/html")
    return message


def _without_date(data: bytes) -> bytes:
    return re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: -\r\n", data)


def _outcome(build, seed: int):
    """What ``build()`` returns (the Date header blanked), or the exception it raises."""
    random.seed(seed)
    try:
        return _without_date(build())
    except Exception as exc:  # noqa: BLE001 - the same error from both is part of the contract
        return type(exc)


def assert_same_as_django(message: EmailMessage) -> None:
    django = _outcome(lambda: message.message().as_bytes(linesep="\r\n"), 7)
    ours = _outcome(lambda: message_bytes(message), 7)
    assert ours == django


@pytest.mark.parametrize("subject", [
    "Hi", "Your picks for this week, Ada", "x" * 68, "x" * 69, "x" * 70, "x" * 76, "x" * 77, "word " * 40,
    "Grüße für Sie, Zoë", "🎉 " * 30, "a  b\tc", " leading and trailing ", "=?utf-8?q?not_a_word?=",
    "semi;colon,comma " * 8, "A" * 300,
])
def test_headers_fold_and_encode_as_django_does(subject):
    """Short and long, ASCII and not, odd spacing: every subject gives Django's bytes."""
    assert_same_as_django(_message(subject=subject))
    assert_same_as_django(_message(subject=subject, from_email=f"{subject} <hello@example.com>"))


@pytest.mark.parametrize("body", [
    "Hi\n", "Hi", "a\r\nb\rc\nd\r\r\n\n", "é ü ß\n" * 40, "x" * 998, "é" * 499, "\n.a leading dot\n.\n",
    "From the start\n", "\u2028separator\x0cform feed\x0bvertical tab", "trailing spaces   \n\n\n",
])
def test_bodies_are_written_as_django_writes_them(body):
    """Line ends become CRLF, 7bit or 8bit as the content needs, dots and 'From ' left alone."""
    assert_same_as_django(_message(text=body, html=f"<div>{body}</div>"))


@pytest.mark.parametrize("message", [
    _message(text="x" * 999),  # a line over 998 bytes: Django switches to quoted-printable
    _message(html="é" * 500),
    _message(text=""),  # no text part: the HTML alone
    _message(**{"Reply-To": "support@example.com"}),
    _message(**{"Date": "Mon, 30 Nov 2026 08:00:00 -0000"}),
])
def test_other_shapes_are_built_by_django(message):
    """Whatever a campaign message never is still comes out exactly as Django builds it."""
    assert_same_as_django(message)


def test_the_direct_path_covers_a_campaign_message_and_django_the_rest():
    assert _alternative_bytes(_message()) is not None
    assert _alternative_bytes(_message(text="x" * 999)) is None
    assert _alternative_bytes(_message(**{"Cc": "x@example.com"})) is None


@pytest.mark.parametrize("message", [
    _message(subject="Hi\nBcc: everyone@example.com"),
    _message(**{"X-Campaign-ID": "1\r\nBcc: everyone@example.com"}),
    _message(text="lone surrogate \udc80"),
])
def test_header_injection_and_unencodable_text_fail_as_in_django(message):
    """A newline in a header is a BadHeaderError, a lone surrogate a UnicodeEncodeError: both paths."""
    with pytest.raises((BadHeaderError, UnicodeEncodeError)):
        message_bytes(message)
    assert_same_as_django(message)


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=st.text(max_size=120), text=st.text(min_size=1, max_size=400), html=st.text(max_size=400),
       name=st.text(max_size=40))
def test_any_text_gives_djangos_bytes(subject, text, html, name):
    """Arbitrary Unicode (control characters, surrogates, line separators) in the subject, the
    display name and both bodies: the same bytes as Django, or the same exception."""
    assert_same_as_django(_message(subject=subject, text=text, html=html,
                                   from_email=f'"{name}" <hello@example.com>'.replace("\\", "")))


@pytest.mark.parametrize("address", [
    "ada@example.com", "Ada.Lovelace+news@mail.example.co.uk", "ADA@EXAMPLE.COM", "a_b-c@x-y.example",
    "o'brien@example.ie", "a..b@example.com", "zoë@example.com", "ada@exämple.com", "Ada <ada@example.com>",
    '"Lovelace, Ada" <ada@example.com>', "a@" + "b" * 64 + ".com",
])
def test_envelope_addresses_are_djangos(address):
    """The envelope recipients are what Django's backend would give to smtplib (or the same error)."""
    message = _message(to=address)
    try:
        expected = [sanitize_address(address, "utf-8")]
    except ValueError:
        with pytest.raises(ValueError):
            wire_message(message)
        return
    wire = wire_message(message)
    assert wire.recipients == expected
    assert wire.sender == sanitize_address(message.from_email, "utf-8")


@pytest.mark.django_db
def test_a_rendered_campaign_message_on_the_wire(campaign, make_customers):
    """A hostile first name: escaped in the HTML part, as typed in the text part; the headers a
    mailbox provider needs (RFC 8058 one-click unsubscribe, our Message-ID) are there."""
    from campaigns.models import Recipient
    from campaigns.services.build import campaign_build

    # given
    make_customers(1)
    campaign.html_template = "<p>Hi {{ first_name }}</p>{% for i in items %}<a href='{{ i.click_url }}'>{% endfor %}"
    campaign.text_template = "Hi {{ first_name }}"
    campaign.subject_template = "For {{ first_name }}"
    campaign.save()
    campaign_build(campaign=campaign)
    recipient = Recipient.objects.select_related("customer", "campaign").get(campaign=campaign)
    recipient.customer.first_name = "<script>Zoë</script>"
    # when
    wire = wire_message(recipient_message(recipient=recipient))
    # then
    parsed = message_from_bytes(wire.data, policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = parsed.iter_parts()
    assert text.get_content() == "Hi <script>Zoë</script>"
    assert html.get_content_type() == "text/html" and "Hi &lt;script&gt;Zoë&lt;/script&gt;" in html.get_content()
    assert parsed["Subject"] == "For <script>Zoë</script>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["List-Unsubscribe"].strip().startswith("<http") and "/t/u/" in parsed["List-Unsubscribe"]
    assert parsed["Message-ID"] == message_id_for(recipient=recipient)
    assert wire.recipients == [recipient.email]
    assert all(len(line) <= 998 for line in wire.data.split(b"\r\n"))

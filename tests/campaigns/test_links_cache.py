"""Tracking links build their path from one ``reverse()`` per process: the same URLs as reversing each."""
from __future__ import annotations

from django.core import signing
from django.urls import reverse

from campaigns.links import CLICK_SALT, OPEN_SALT, UNSUBSCRIBE_SALT, click_url, open_url, unsubscribe_url


def _token(url: str, before: str, after: str) -> str:
    assert url.startswith(before) and url.endswith(after), url
    return url[len(before):len(url) - len(after)]


def test_links_equal_reversed_urls_and_carry_loadable_tokens(settings):
    settings.SITE_URL = "https://crm.example.com/"
    for url, name, salt, payload, suffix in (
        (click_url(recipient_id=7, item_id=42), "click", CLICK_SALT, [7, 42], "/"),
        (open_url(recipient_id=7), "open", OPEN_SALT, [7], ".gif"),
        (unsubscribe_url(recipient_id=7), "unsubscribe", UNSUBSCRIBE_SALT, [7], "/"),
    ):
        token = _token(url, "https://crm.example.com/t/", suffix)[2:]
        assert url == "https://crm.example.com" + reverse(f"campaigns-tracking:{name}", kwargs={"token": token})
        assert signing.loads(token, salt=salt) == payload

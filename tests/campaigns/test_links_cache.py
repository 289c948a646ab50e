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


def test_tokens_are_djangos_signed_tokens(settings):
    """``token_make`` derives its HMAC key once, and still makes exactly ``signing.dumps``'s token
    (the same clock second), for every salt, after a SECRET_KEY change too."""
    import time_machine

    from campaigns.links import token_make

    with time_machine.travel(1_790_000_000, tick=False):
        for secret in ("first-secret-key-" * 3, "second-secret-key-" * 3):
            settings.SECRET_KEY = secret
            for salt, payload in ((CLICK_SALT, [7, 42]), (OPEN_SALT, [2**40]), (UNSUBSCRIBE_SALT, [0])):
                assert token_make(salt=salt, payload=payload) == signing.dumps(payload, salt=salt)


def test_message_links_are_the_links_one_by_one(settings):
    """A message's links built together equal each link built alone (the same second)."""
    import time_machine

    from campaigns.links import message_links

    settings.SITE_URL = "https://crm.example.com"
    with time_machine.travel(1_790_000_000, tick=False):
        links = message_links(recipient_id=7, item_ids=[42, 43])
        assert links.open == open_url(recipient_id=7)
        assert links.unsubscribe == unsubscribe_url(recipient_id=7)
        assert links.clicks == {42: click_url(recipient_id=7, item_id=42), 43: click_url(recipient_id=7, item_id=43)}

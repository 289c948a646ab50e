"""Signed tracking links: tamper-proof, and carrying ids only (no e-mail address or name in clear).

Each kind of link has its own salt, so an open token cannot be replayed as a click or an
unsubscribe. Tokens do not expire: an unsubscribe link must keep working for years.
"""
from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

OPEN_SALT = "campaigns.tracking.open"
CLICK_SALT = "campaigns.tracking.click"
UNSUBSCRIBE_SALT = "campaigns.tracking.unsubscribe"


def token_make(*, salt: str, payload: list[int]) -> str:
    return signing.dumps(payload, salt=salt)


def token_load(*, salt: str, token: str) -> list[int] | None:
    """The payload of a valid token; None when it is tampered with, truncated or of another kind."""
    try:
        payload = signing.loads(token, salt=salt)
    except signing.BadSignature:
        return None
    if not isinstance(payload, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in payload):
        return None
    return payload


def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def open_url(*, recipient_id: int) -> str:
    token = token_make(salt=OPEN_SALT, payload=[recipient_id])
    return _absolute(reverse("campaigns-tracking:open", kwargs={"token": token}))


def click_url(*, recipient_id: int, item_id: int) -> str:
    token = token_make(salt=CLICK_SALT, payload=[recipient_id, item_id])
    return _absolute(reverse("campaigns-tracking:click", kwargs={"token": token}))


def unsubscribe_url(*, recipient_id: int) -> str:
    token = token_make(salt=UNSUBSCRIBE_SALT, payload=[recipient_id])
    return _absolute(reverse("campaigns-tracking:unsubscribe", kwargs={"token": token}))

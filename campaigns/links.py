"""Signed tracking links: tamper-proof, and carrying ids only (no e-mail address or name in clear).

Each kind of link has its own salt, so an open token cannot be replayed as a click or an
unsubscribe. Tokens do not expire: an unsubscribe link must keep working for years.
"""
from __future__ import annotations

import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.crypto import salted_hmac

OPEN_SALT = "campaigns.tracking.open"
CLICK_SALT = "campaigns.tracking.click"
UNSUBSCRIBE_SALT = "campaigns.tracking.unsubscribe"


@lru_cache(maxsize=16)
def _keyed_hmac(salt: str, secret: str) -> hmac.HMAC:
    """The HMAC-SHA256 that ``signing.dumps(..., salt=salt)`` signs with, its key derived once
    (Django derives it for every token; a message carries seven)."""
    return salted_hmac(salt + "signer", b"", secret, algorithm="sha256")


def token_make(*, salt: str, payload: list[int]) -> str:
    """A signed, timestamped token of ``payload``: exactly what ``signing.dumps(payload, salt=salt)``
    returns (``TimestampSigner``'s "base64 JSON:base62 time:base64 HMAC"), made without the signer's
    layers for a list of ints."""
    if not all(type(value) is int for value in payload):
        return signing.dumps(payload, salt=salt)
    data = signing.b64_encode(f"[{','.join(map(str, payload))}]".encode()).decode()  # JSONSerializer's bytes
    value = f"{data}:{signing.b62_encode(int(time.time()))}"
    mac = _keyed_hmac(salt, settings.SECRET_KEY).copy()
    mac.update(value.encode())
    return f"{value}:{signing.b64_encode(mac.digest()).decode()}"


def token_load(*, salt: str, token: str) -> list[int] | None:
    """The payload of a valid token; None when it is tampered with, truncated or of another kind."""
    try:
        payload = signing.loads(token, salt=salt)
    except signing.BadSignature:
        return None
    if not isinstance(payload, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in payload):
        return None
    return payload


_MARKER = "0tailoredtoken0"  # URL-safe like every token, so reverse() leaves both untouched
OPEN, CLICK, UNSUBSCRIBE = "campaigns-tracking:open", "campaigns-tracking:click", "campaigns-tracking:unsubscribe"


@lru_cache(maxsize=32)
def _frames(site_url: str, script_prefix: str, urlconf: str | None) -> dict[str, tuple[str, str]]:
    """Each link's absolute URL before and after its token: ``reverse()`` once per process, not
    seven times a message."""
    frames = {}
    for name in (OPEN, CLICK, UNSUBSCRIBE):
        before, _, after = reverse(name, kwargs={"token": _MARKER}).partition(_MARKER)
        frames[name] = (site_url.rstrip("/") + before, after)
    return frames


def _current_frames() -> dict[str, tuple[str, str]]:
    return _frames(settings.SITE_URL, get_script_prefix(), get_urlconf())


def _link(frames: dict[str, tuple[str, str]], name: str, salt: str, payload: list[int]) -> str:
    before, after = frames[name]
    return before + token_make(salt=salt, payload=payload) + after


def open_url(*, recipient_id: int) -> str:
    return _link(_current_frames(), OPEN, OPEN_SALT, [recipient_id])


def click_url(*, recipient_id: int, item_id: int) -> str:
    return _link(_current_frames(), CLICK, CLICK_SALT, [recipient_id, item_id])


def unsubscribe_url(*, recipient_id: int) -> str:
    return _link(_current_frames(), UNSUBSCRIBE, UNSUBSCRIBE_SALT, [recipient_id])


@dataclass(frozen=True)
class MessageLinks:
    open: str
    unsubscribe: str
    clicks: dict[int, str]  # item id -> its click link


def message_links(*, recipient_id: int, item_ids: Iterable[int]) -> MessageLinks:
    """Every tracking link of one message: what ``open_url``, ``unsubscribe_url`` and ``click_url``
    return, with the URL frames looked up once for the message."""
    frames = _current_frames()
    return MessageLinks(
        open=_link(frames, OPEN, OPEN_SALT, [recipient_id]),
        unsubscribe=_link(frames, UNSUBSCRIBE, UNSUBSCRIBE_SALT, [recipient_id]),
        clicks={item_id: _link(frames, CLICK, CLICK_SALT, [recipient_id, item_id]) for item_id in item_ids},
    )

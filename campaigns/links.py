"""Signed tracking links: tamper-proof, and carrying ids only (no e-mail address or name in clear).

Each kind of link has its own salt, so an open token cannot be replayed as a click or an
unsubscribe. Tokens do not expire: an unsubscribe link must keep working for years.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.crypto import salted_hmac
from django.utils.encoding import force_bytes

OPEN_SALT = "campaigns.tracking.open"
CLICK_SALT = "campaigns.tracking.click"
UNSUBSCRIBE_SALT = "campaigns.tracking.unsubscribe"


class _TokenSigner(signing.TimestampSigner):
    """Django's ``TimestampSigner`` (``signing.dumps`` makes the same tokens), deriving its HMAC key
    once instead of once per token: a message carries seven tokens, a send makes thousands a second."""

    def __init__(self, *, salt: str, key: str):
        super().__init__(key=key, salt=salt, fallback_keys=[])
        self._keyed = salted_hmac(self.salt + "signer", b"", key, algorithm=self.algorithm)

    def signature(self, value, key=None) -> str:
        if key is not None and key != self.key:
            return super().signature(value, key)
        mac = self._keyed.copy()
        mac.update(force_bytes(value))
        return signing.b64_encode(mac.digest()).decode()


@lru_cache(maxsize=16)
def _signer(salt: str, secret: str) -> _TokenSigner:
    return _TokenSigner(salt=salt, key=secret)


def token_make(*, salt: str, payload: list[int]) -> str:
    """A signed, timestamped token of ``payload`` (what ``signing.dumps(payload, salt=salt)`` returns)."""
    signer = _signer(salt, settings.SECRET_KEY)
    if all(type(value) is int for value in payload):  # JSONSerializer's bytes, without the encoder
        return signer.sign(signing.b64_encode(f"[{','.join(map(str, payload))}]".encode()).decode())
    return signer.sign_object(payload)


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

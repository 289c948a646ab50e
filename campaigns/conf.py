"""The campaigns app's settings: one ``CAMPAIGNS`` dict, read lazily, with defaults.

Call ``campaigns_settings()`` at use time (never at import time) so ``override_settings`` works.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from django.conf import settings

DEFAULTS = {
    # Recipients per send batch (one Celery task each); one SMTP connection is reused per batch.
    "SEND_BATCH_SIZE": 200,
    # Recipients claimed (and their outcomes recorded) per statement within a batch: the most a
    # worker killed mid-send leaves "in doubt". 1 = one message, as before batching; larger is faster.
    "SEND_CLAIM_SIZE": 50,
    # Per-process throttle: at most this many messages per second (0 = unlimited).
    "SEND_RATE_PER_SECOND": 0,
    # Messages per second per recipient domain, shared by every worker (Redis when the broker is
    # Redis): {"gmail.com googlemail.com": 50, "*": 500}; the domains of one key share its limit,
    # "*" is one limit for every other domain; {} = unlimited (campaigns.services.throttle).
    "SEND_RATE_LIMITS": {},
    # First retry delay of a batch sent inline (manage.py campaign send); doubles each retry
    # (the whole policy: campaigns.services.send.SendRetryPolicy).
    "SEND_RETRY_BACKOFF_SECONDS": 1.0,
    # Customers per build chunk (one bulk read of recommendations + one bulk insert each).
    "BUILD_CHUNK_SIZE": 2000,
    # A purchase of a clicked item within this many days after the click is a conversion.
    "ATTRIBUTION_DAYS": 7,
    # Items sent to a customer in campaigns within this many days are demoted (rotation).
    "ROTATION_DAYS": 30,
    # Clicks this soon after delivery are treated as link scanners.
    "SCANNER_MIN_SECONDS_AFTER_SEND": 10,
    # Every link of a message (two or more) clicked within this many seconds: a scanner.
    "SCANNER_ALL_LINKS_WINDOW_SECONDS": 5,
    # Case-insensitive substrings of user agents of known link scanners / security gateways.
    "SCANNER_USER_AGENTS": [
        "barracuda",
        "proofpoint",
        "mimecast",
        "safelinks",
        "symantec",
        "trendmicro",
        "forcepoint",
        "sophos",
        "fortiguard",
        "zscaler",
        "python-requests",
        "curl/",
        "wget/",
        "headlesschrome",
        "bot",
        "spider",
        "crawler",
    ],
    # Optional mailto for List-Unsubscribe, e.g. "unsubscribe@example.com" ("" = https only).
    "UNSUBSCRIBE_MAILTO": "",
    # Domain used in Message-IDs; "" = the domain of DEFAULT_FROM_EMAIL.
    "MESSAGE_ID_DOMAIN": "",
    # --- Deliverability (campaigns/services/deliverability.py) ---
    # A soft bounce re-sends the message at most this many times, this many seconds later.
    "SOFT_BOUNCE_MAX_RETRIES": 2,
    "SOFT_BOUNCE_RETRY_SECONDS": 3600,
    # Opens by a machine (Apple Mail Privacy Protection prefetches with a bare "Mozilla/5.0"):
    # exact user agents, compared case-insensitively. Opens within SCANNER_MIN_SECONDS_AFTER_SEND
    # of delivery and known scanner agents count as machine opens too.
    "MACHINE_OPEN_USER_AGENTS": ["mozilla/5.0"],
    # --- Outbound webhooks (campaigns/services/webhooks_out.py) ---
    "WEBHOOK_MAX_ATTEMPTS": 8,
    "WEBHOOK_BACKOFF_SECONDS": 30.0,
    "WEBHOOK_BACKOFF_MAX_SECONDS": 6 * 3600.0,
    "WEBHOOK_TIMEOUT_SECONDS": 10.0,
    # --- Local send times (campaigns/services/local_time.py) ---
    # The shop's time zone for customers without one ("" = settings.TIME_ZONE).
    "DEFAULT_TIME_ZONE": "",
    # Shop-wide quiet hours in each recipient's local time, ["21:00", "08:00"], or [] for none.
    "QUIET_HOURS": [],
}


@dataclass(frozen=True)
class CampaignsSettings:
    SEND_BATCH_SIZE: int
    SEND_CLAIM_SIZE: int
    SEND_RATE_PER_SECOND: float
    SEND_RATE_LIMITS: dict
    SEND_RETRY_BACKOFF_SECONDS: float
    BUILD_CHUNK_SIZE: int
    ATTRIBUTION_DAYS: int
    ROTATION_DAYS: int
    SCANNER_MIN_SECONDS_AFTER_SEND: float
    SCANNER_ALL_LINKS_WINDOW_SECONDS: float
    SCANNER_USER_AGENTS: list
    UNSUBSCRIBE_MAILTO: str
    MESSAGE_ID_DOMAIN: str
    SOFT_BOUNCE_MAX_RETRIES: int
    SOFT_BOUNCE_RETRY_SECONDS: float
    MACHINE_OPEN_USER_AGENTS: list
    WEBHOOK_MAX_ATTEMPTS: int
    WEBHOOK_BACKOFF_SECONDS: float
    WEBHOOK_BACKOFF_MAX_SECONDS: float
    WEBHOOK_TIMEOUT_SECONDS: float
    DEFAULT_TIME_ZONE: str
    QUIET_HOURS: list


def campaigns_settings() -> CampaignsSettings:
    user = getattr(settings, "CAMPAIGNS", {}) or {}
    unknown = set(user) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown CAMPAIGNS settings: {', '.join(sorted(unknown))}")
    merged = {**DEFAULTS, **user}
    return CampaignsSettings(**{f.name: merged[f.name] for f in fields(CampaignsSettings)})

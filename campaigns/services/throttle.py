"""Send-rate limits per recipient domain (or group of domains: one provider), shared by every worker.

``CAMPAIGNS["SEND_RATE_LIMITS"]`` maps domains to messages per second, e.g.
``{"gmail.com googlemail.com": 50, "outlook.com hotmail.com": 100, "*": 500}``: the domains of one
key share one limit, and ``"*"`` is one limit shared by every domain not named (no ``"*"``: those
are not limited). Each limit is a token bucket of one token refilled at the rate (GCRA, "virtual
scheduling"): messages are spaced evenly, never more than the rate in any second, whatever the
number of workers.

The buckets live in Redis when the Celery broker is Redis, so every worker process draws from the
same ones (one Lua script per domain and batch: atomic, on the server's clock); without a broker
(inline sends) they live in this process. A batch *reserves* its slots before it claims anything,
then sends each message at its slot, so a worker never sleeps holding a lock and the slots of one
slow domain do not hold up the others in the batch.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Protocol

from django.conf import settings

OTHER_DOMAINS = "*"
REDIS_PREFIX = "tailored:send-rate:"
BAD_RATE = "CAMPAIGNS['SEND_RATE_LIMITS'][{key!r}] must be a positive number of messages per second; got {value!r}."


class SlotBuckets(Protocol):
    def reserve(self, key: str, count: int, interval: float) -> list[float]:
        """Reserve ``count`` slots of bucket ``key`` (one message every ``interval`` seconds);
        returns, for each, the seconds from now until it may be used (0: at once)."""


class LocalBuckets:
    """The buckets of this process; ``clock`` is injectable (tests), ``time.monotonic`` by default."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._next_free: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, key: str, count: int, interval: float) -> list[float]:
        with self._lock:
            now = self.clock()
            start = max(self._next_free.get(key, now), now)
            self._next_free[key] = start + count * interval
        return [start - now + i * interval for i in range(count)]


# KEYS[1]: the bucket; ARGV: interval (s), count. The bucket holds the next free instant (server
# clock, seconds); it expires once it is in the past, so idle buckets cost nothing.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local start = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local next_free = start + count * interval
redis.call('SET', KEYS[1], string.format('%.6f', next_free), 'PX', math.ceil((next_free - now) * 1000) + 1000)
return string.format('%.6f', start - now)
"""


class RedisBuckets:
    """Buckets shared by every process through Redis (one atomic script call per reservation)."""

    def __init__(self, client):
        self._script = client.register_script(_RESERVE)

    def reserve(self, key: str, count: int, interval: float) -> list[float]:
        first = float(self._script(keys=[REDIS_PREFIX + key], args=[repr(interval), count]))
        return [first + i * interval for i in range(count)]


def rate_limits_parse(limits: Mapping[str, float]) -> dict[str, tuple[str, float]]:
    """``{domain: (bucket key, rate)}`` from the setting (``"*"`` stays a key of its own)."""
    parsed: dict[str, tuple[str, float]] = {}
    for key, value in (limits or {}).items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError(BAD_RATE.format(key=key, value=value))
        bucket = " ".join(sorted(key.lower().split()))
        for domain in bucket.split():
            parsed[domain] = (bucket, float(value))
    return parsed


@lru_cache(maxsize=4)
def _redis_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)


_local_buckets = LocalBuckets()


def shared_buckets() -> SlotBuckets:
    """Redis buckets when the Celery broker is Redis (real workers), else this process's."""
    url = getattr(settings, "CELERY_BROKER_URL", "") or ""
    if not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False) and url.startswith(("redis://", "rediss://")):
        return RedisBuckets(_redis_client(url))
    return _local_buckets


class SendThrottle:
    """When each message of a batch may go, from the per-domain limits."""

    def __init__(self, limits: Mapping[str, float], buckets: SlotBuckets | None = None):
        self.limits = rate_limits_parse(limits)
        self.buckets = buckets

    def bucket_of(self, address: str) -> tuple[str, float] | None:
        domain = address.rpartition("@")[2].strip().lower()
        return self.limits.get(domain) or self.limits.get(OTHER_DOMAINS)

    def delays(self, addresses: Iterable[str]) -> list[float]:
        """Seconds from now until each address (in order) may be sent to: one reservation per bucket."""
        addresses = list(addresses)
        delays = [0.0] * len(addresses)
        if not self.limits:
            return delays
        by_bucket: dict[tuple[str, float], list[int]] = defaultdict(list)
        for index, address in enumerate(addresses):
            bucket = self.bucket_of(address)
            if bucket is not None:
                by_bucket[bucket].append(index)
        buckets = self.buckets or shared_buckets()
        for (key, rate), indexes in by_bucket.items():
            for index, delay in zip(indexes, buckets.reserve(key, len(indexes), 1.0 / rate), strict=True):
                delays[index] = delay
        return delays


class ProcessPacer:
    """At most ``rate`` messages per second from this process (``SEND_RATE_PER_SECOND``; 0: no limit)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / rate if rate else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_at = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        if self.next_at > now:
            self.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.interval

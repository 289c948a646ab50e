"""Per-domain send-rate limits: token buckets (an injected clock), the setting, and a send honouring them."""
from __future__ import annotations

import os
import uuid

import pytest

from campaigns.services import send as send_module
from campaigns.services.build import campaign_build
from campaigns.services.throttle import (
    BAD_RATE,
    LocalBuckets,
    RedisBuckets,
    SendThrottle,
    rate_limits_parse,
    shared_buckets,
)


class FakeClock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_bucket_spaces_reservations_at_its_rate_and_never_saves_up_a_burst():
    # given: 2 messages a second
    clock = FakeClock()
    buckets = LocalBuckets(clock=clock)
    # when / then: three at once go at 0, 0.5 and 1.0 s
    assert buckets.reserve("gmail.com", 3, 0.5) == [0.0, 0.5, 1.0]
    clock.now += 0.2  # the next free slot is 1.5 s after the first reservation
    assert buckets.reserve("gmail.com", 1, 0.5) == [pytest.approx(1.3)]
    assert buckets.reserve("other", 1, 0.5) == [0.0]  # buckets are independent
    clock.now += 60  # an idle minute does not allow a burst afterwards
    assert buckets.reserve("gmail.com", 2, 0.5) == [0.0, 0.5]


def test_domains_of_one_key_share_a_limit_and_star_takes_every_other_domain():
    # given
    throttle = SendThrottle({"gmail.com googlemail.com": 2, "*": 4}, buckets=LocalBuckets(clock=FakeClock()))
    addresses = ["a@gmail.com", "b@googlemail.com", "c@example.org", "d@GMAIL.com", "e@example.net"]
    # when
    delays = throttle.delays(addresses)
    # then
    assert delays == [0.0, 0.5, 0.0, 1.0, 0.25]


def test_without_a_star_other_domains_are_not_limited():
    throttle = SendThrottle({"gmail.com": 1}, buckets=LocalBuckets(clock=FakeClock()))
    assert throttle.delays(["a@example.org", "b@example.org", "c@gmail.com", "d@gmail.com"]) == [0, 0, 0, 1.0]
    assert SendThrottle({}).delays(["a@gmail.com"] * 3) == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("value", [0, -5, "50", True, None])
def test_a_rate_that_is_not_a_positive_number_is_refused(value):
    with pytest.raises(ValueError, match="must be a positive number") as raised:
        rate_limits_parse({"gmail.com": value})
    assert str(raised.value) == BAD_RATE.format(key="gmail.com", value=value)


def test_buckets_are_shared_through_redis_when_the_broker_is_redis(settings):
    settings.CELERY_TASK_ALWAYS_EAGER, settings.CELERY_BROKER_URL = False, "redis://127.0.0.1:6379/15"
    assert isinstance(shared_buckets(), RedisBuckets)
    settings.CELERY_TASK_ALWAYS_EAGER = True  # no broker: inline sends, this process's buckets
    assert isinstance(shared_buckets(), LocalBuckets)


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="needs TEST_REDIS_URL (a real Redis)")
def test_two_processes_draw_from_one_redis_bucket():
    """Two clients (two workers) reserving from one bucket get consecutive slots, never the same one."""
    import redis

    client = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])
    key = f"test-{uuid.uuid4().hex}"
    try:
        first = RedisBuckets(client).reserve(key, 3, 0.5)
        second = RedisBuckets(redis.Redis.from_url(os.environ["TEST_REDIS_URL"])).reserve(key, 2, 0.5)
    finally:
        client.delete(f"tailored:send-rate:{key}")
    assert first[0] == pytest.approx(0.0, abs=0.01) and first[1:] == pytest.approx([0.5, 1.0], abs=0.01)
    assert second == pytest.approx([1.5, 2.0], abs=0.05)  # after the first three, on the server's clock


@pytest.mark.django_db
def test_a_send_waits_for_each_domain_slot(campaign, make_customers, settings, monkeypatch):
    """Three recipients on one limited domain at 10/s: the sender waits 0.1 s and 0.2 s after the first
    (time.sleep is the system edge recorded here); a domain without a limit waits for nothing."""
    # given
    for n in range(3):
        make_customers(1, email=f"limited{n}@slow.example")
    for n in range(2):
        make_customers(1, email=f"free{n}@fast.example")
    campaign_build(campaign=campaign)
    settings.CAMPAIGNS = {"SEND_RATE_LIMITS": {"slow.example": 10}, "SEND_RETRY_BACKOFF_SECONDS": 0}
    sleeps: list[float] = []
    monkeypatch.setattr(send_module.time, "sleep", sleeps.append)
    # when
    report = send_module.campaign_send(campaign=campaign)
    # then
    assert report.sent == 5
    assert sorted(sleeps) == [pytest.approx(0.1, abs=0.05), pytest.approx(0.2, abs=0.05)]


def test_bad_send_settings_are_reported_by_manage_py_check(settings):
    from campaigns.checks import campaigns_send_settings_check

    settings.CAMPAIGNS = {"SEND_RATE_LIMITS": {"gmail.com": "fast"}, "SEND_CLAIM_SIZE": 0}
    assert [e.id for e in campaigns_send_settings_check()] == ["campaigns.E001", "campaigns.E002"]
    settings.CAMPAIGNS = {"SEND_RATE_LIMITS": ["gmail.com"]}
    assert [e.id for e in campaigns_send_settings_check()] == ["campaigns.E001"]
    settings.CAMPAIGNS = {"SEND_RATE_LIMITS": {"gmail.com": 50, "*": 500}, "SEND_CLAIM_SIZE": 1}
    assert campaigns_send_settings_check() == []

"""'09:00 in each recipient's time zone': waves at the right UTC instants, quiet hours, caps across campaigns."""
from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail

from campaigns.models import Campaign, Recipient, SendWave
from campaigns.services.local_time import (
    campaign_plan_local_send,
    country_time_zones,
    customer_time_zone_name,
    local_instant,
    out_of_quiet_hours,
)
from campaigns.services.schedule import campaign_dispatch_due

DAY = date(2026, 12, 1)  # winter: New York UTC-5, Berlin UTC+1, Tokyo UTC+9
PLANNED_AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def world(settings, campaign, make_customers, django_capture_on_commit_callbacks):
    """Three customers: a timezone attribute (New York), a country (Japan), neither (the shop's Berlin)."""
    settings.CAMPAIGNS = {"DEFAULT_TIME_ZONE": "Europe/Berlin", "SEND_RETRY_BACKOFF_SECONDS": 0}
    new_york = make_customers(1, country="", attributes={"timezone": "America/New_York"})[0]
    tokyo = make_customers(1, country="JP")[0]
    berlin = make_customers(1, country="", attributes={"timezone": "Not/AZone"})[0]
    return {"America/New_York": new_york, "Asia/Tokyo": tokyo, "Europe/Berlin": berlin}


def dispatch(now: datetime, capture) -> None:
    with capture(execute=True):
        campaign_dispatch_due(now=now)


def sent_to() -> set[str]:
    return {to for message in mail.outbox for to in message.to}


def test_nine_local_makes_three_waves_at_the_right_utc_instants(world, campaign,
                                                                  django_capture_on_commit_callbacks):
    def tick(now: datetime) -> None:
        """The beat task's minute, with the clock frozen at ``now``."""
        with time_machine.travel(now, tick=False), django_capture_on_commit_callbacks(execute=True):
            campaign_dispatch_due()

    with time_machine.travel(PLANNED_AT, tick=False):
        waves = campaign_plan_local_send(campaign=campaign, day=DAY, at="09:00")
    assert [(w.send_at, w.time_zones, w.customers) for w in waves] == [
        (at(0), ["Asia/Tokyo"], 1),
        (at(8), ["Europe/Berlin"], 1),
        (at(14), ["America/New_York"], 1),
    ]
    assert campaign.status == Campaign.Status.SCHEDULED and campaign.send_at == at(0)

    tick(datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    assert mail.outbox == []
    tick(at(0, 1))
    assert sent_to() == {world["Asia/Tokyo"].email}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING  # more waves to go
    tick(at(8))
    assert sent_to() == {world["Asia/Tokyo"].email, world["Europe/Berlin"].email}
    tick(at(13, 59))
    assert len(mail.outbox) == 2
    tick(at(14))
    assert sent_to() == {c.email for c in world.values()}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT and campaign.sent_at == at(14)
    sent_times = dict(Recipient.objects.filter(campaign=campaign).values_list("customer_id", "sent_at"))
    assert sent_times == {world["Asia/Tokyo"].pk: at(0, 1), world["Europe/Berlin"].pk: at(8),
                          world["America/New_York"].pk: at(14)}
    assert set(SendWave.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"sent"}
    tick(at(15))  # nothing is sent twice
    assert len(mail.outbox) == 3


def test_quiet_hours_move_a_wave_to_their_end(world, campaign, settings):
    settings.CAMPAIGNS = {"DEFAULT_TIME_ZONE": "Europe/Berlin", "QUIET_HOURS": ["21:00", "08:00"]}
    waves = campaign_plan_local_send(campaign=campaign, day=DAY, at=time(7, 0), now=PLANNED_AT)
    # 07:00 is quiet everywhere: each zone's wave moves to 08:00 local.
    assert [w.send_at for w in waves] == [datetime(2026, 11, 30, 23, 0, tzinfo=UTC), at(7), at(13)]


def test_overnight_quiet_hours_late_evening_goes_to_next_morning(settings):
    settings.CAMPAIGNS = {"QUIET_HOURS": ["21:00", "08:00"]}
    berlin = ZoneInfo("Europe/Berlin")
    evening = local_instant(day=DAY, at=time(22, 30), zone=berlin)
    assert out_of_quiet_hours(evening, berlin) == datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
    noon = local_instant(day=DAY, at=time(12, 0), zone=berlin)
    assert out_of_quiet_hours(noon, berlin) == noon


def test_bad_quiet_hours_setting_is_named(settings, campaign, db):
    settings.CAMPAIGNS = {"QUIET_HOURS": ["late", "early"]}
    with pytest.raises(ValueError, match="QUIET_HOURS"):
        out_of_quiet_hours(PLANNED_AT, ZoneInfo("UTC"))


def test_dst_gap_and_zone_lookup():
    # 02:30 on the spring-forward night does not exist in Berlin: it resolves to 03:30 CEST = 01:30Z.
    gap = local_instant(day=date(2026, 3, 29), at=time(2, 30), zone=ZoneInfo("Europe/Berlin"))
    assert gap == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert country_time_zones()["US"] == "America/New_York" and country_time_zones()["FR"] == "Europe/Paris"
    assert customer_time_zone_name(attribute="Asia/Kolkata", country="US", default="UTC") == "Asia/Kolkata"
    assert customer_time_zone_name(attribute=["x"], country="au", default="UTC") == "Australia/Sydney"
    assert customer_time_zone_name(attribute=None, country="", default="Europe/Berlin") == "Europe/Berlin"


def test_plan_refuses_bad_input(world, campaign):
    with pytest.raises(ValueError, match="HH:MM"):
        campaign_plan_local_send(campaign=campaign, day=DAY, at="9 o'clock", now=PLANNED_AT)
    with pytest.raises(ValueError, match="in the past"):
        campaign_plan_local_send(campaign=campaign, day=date(2026, 11, 1), at="09:00", now=PLANNED_AT)
    assert not SendWave.objects.exists()


def test_frequency_caps_count_across_campaigns_in_waves(world, campaign, make_customers,
                                                          django_capture_on_commit_callbacks):
    from campaigns.services.build import campaign_build
    from campaigns.services.send import campaign_send

    earlier = Campaign.objects.create(name="Earlier", n_items=2, holdout_share=0.0,
                                      frequency_cap_count=1, frequency_cap_days=7)
    campaign_build(campaign=earlier)
    campaign_send(campaign=earlier)
    assert len(mail.outbox) == 3
    Campaign.objects.filter(pk=campaign.pk).update(frequency_cap_count=1, frequency_cap_days=7)
    campaign.refresh_from_db()
    campaign_plan_local_send(campaign=campaign, day=DAY, at="09:00", now=PLANNED_AT)
    for hour in (0, 8, 14):
        dispatch(at(hour, 1), django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 3  # each customer already had their one e-mail this week
    skipped = Recipient.objects.filter(campaign=campaign, state=Recipient.State.SKIPPED)
    assert set(skipped.values_list("skip_reason", flat=True)) == {Recipient.SkipReason.FREQUENCY_CAP}


def test_an_immediate_send_keeps_quiet_hours_and_sends_the_rest_when_they_end(
        world, campaign, settings, django_capture_on_commit_callbacks):
    from campaigns.services.build import campaign_build
    from campaigns.services.local_time import recipients_outside_quiet_hours

    settings.CAMPAIGNS = {"DEFAULT_TIME_ZONE": "Europe/Berlin", "QUIET_HOURS": ["21:00", "08:00"]}
    campaign_build(campaign=campaign)
    pending = list(Recipient.objects.filter(campaign=campaign).values_list("pk", flat=True))
    # 12:00 UTC: 13:00 in Berlin, 07:00 in New York (quiet), 21:00 in Tokyo (quiet).
    now_ids, waiting = recipients_outside_quiet_hours(campaign=campaign, recipient_ids=pending, now=PLANNED_AT)
    assert waiting == 2
    assert list(Recipient.objects.filter(pk__in=now_ids).values_list("customer", flat=True)) == [
        world["Europe/Berlin"].pk]
    waves = SendWave.objects.filter(campaign=campaign).order_by("send_at")
    assert [(w.send_at, w.time_zones) for w in waves] == [
        (datetime(2026, 11, 30, 13, 0, tzinfo=UTC), ["America/New_York"]),  # 08:00 in New York
        (datetime(2026, 11, 30, 23, 0, tzinfo=UTC), ["Asia/Tokyo"]),  # 08:00 next morning in Tokyo
    ]
    from campaigns.services.send import campaign_send_recipients

    campaign_send_recipients(campaign=campaign, recipient_ids=now_ids, finish=False)
    assert sent_to() == {world["Europe/Berlin"].email}
    dispatch(datetime(2026, 11, 30, 13, 0, tzinfo=UTC), django_capture_on_commit_callbacks)
    assert sent_to() == {world["Europe/Berlin"].email, world["America/New_York"].email}
    dispatch(datetime(2026, 11, 30, 23, 0, tzinfo=UTC), django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 3
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT

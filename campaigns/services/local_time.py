"""Local send times: each customer's time zone, "09:00 in each recipient's time zone" waves, quiet hours.

A customer's zone is their ``timezone`` attribute (an IANA name such as ``America/New_York``), else
their country's main zone, else the shop's (``CAMPAIGNS["DEFAULT_TIME_ZONE"]``, default
``TIME_ZONE``). ``campaign_plan_local_send`` turns "day D at HH:MM local" into waves: one
``SendWave`` per distinct UTC instant, shifted out of the shop-wide quiet hours. The dispatcher
(``campaign_dispatch_due``, every minute) starts each wave when due: the first builds the run from
the latest scores, each sends its zones' pending recipients, and the last sends whatever is still
pending (customers who joined or moved zone after planning). Frequency caps, consent and the
suppression list are checked at send time, as for every send, so caps count across campaigns.

A local time that does not exist (the hour skipped when clocks go forward) resolves to the instant
one hour later in wall time; an ambiguous one (clocks go back) to the first occurrence.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns.conf import campaigns_settings
from campaigns.models import Campaign, LocalSendPlan, Recipient, SendWave
from campaigns.services.build import CampaignStateError, campaign_build

logger = logging.getLogger(__name__)

# Countries spanning several zones: the zone most of their people live in (zone.tab lists others first).
MAIN_ZONES = {
    "AR": "America/Argentina/Buenos_Aires", "AU": "Australia/Sydney", "BR": "America/Sao_Paulo",
    "CA": "America/Toronto", "CD": "Africa/Kinshasa", "CL": "America/Santiago", "CN": "Asia/Shanghai",
    "CY": "Asia/Nicosia", "DE": "Europe/Berlin", "EC": "America/Guayaquil", "ES": "Europe/Madrid",
    "FM": "Pacific/Pohnpei", "GL": "America/Nuuk", "ID": "Asia/Jakarta", "KI": "Pacific/Tarawa",
    "KZ": "Asia/Almaty", "MH": "Pacific/Majuro", "MN": "Asia/Ulaanbaatar", "MX": "America/Mexico_City",
    "MY": "Asia/Kuala_Lumpur", "NZ": "Pacific/Auckland", "PF": "Pacific/Tahiti", "PG": "Pacific/Port_Moresby",
    "PT": "Europe/Lisbon", "RU": "Europe/Moscow", "UA": "Europe/Kyiv", "US": "America/New_York",
    "UZ": "Asia/Tashkent",
}
BAD_LOCAL_TIME = "Give the local send time as HH:MM (e.g. 09:00); got {value!r}."
BAD_QUIET_HOURS = 'CAMPAIGNS["QUIET_HOURS"] must be [] or ["HH:MM", "HH:MM"]; got {value!r}.'
ALL_PAST = "Every wave of {day} at {at} local is already in the past; pick a later day."


def _zone_tab() -> str:
    try:
        from importlib.resources import files

        return (files("tzdata") / "zoneinfo" / "zone.tab").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        return Path("/usr/share/zoneinfo/zone.tab").read_text()


@lru_cache(maxsize=1)
def country_time_zones() -> dict[str, str]:
    """ISO 3166 alpha-2 code -> IANA zone (the main one for countries with several)."""
    zones: dict[str, str] = {}
    for line in _zone_tab().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        code, _, name = line.split("\t")[:3]
        zones.setdefault(code, name)
    zones.update(MAIN_ZONES)
    return zones


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def shop_time_zone() -> ZoneInfo:
    return ZoneInfo(campaigns_settings().DEFAULT_TIME_ZONE or settings.TIME_ZONE)


def customer_time_zone_name(*, attribute: object, country: str, default: str) -> str:
    """The ``timezone`` attribute if it names a real zone, else the country's, else ``default``."""
    if isinstance(attribute, str) and attribute.strip() in _known_zones():
        return attribute.strip()
    return country_time_zones().get((country or "").upper(), default)


def local_instant(*, day: date, at: time, zone: ZoneInfo) -> datetime:
    """``day`` at ``at`` wall-clock time in ``zone``, as an aware UTC datetime."""
    # fold=0 (PEP 495): a skipped time uses the offset before the change (so 02:30 -> 03:30 wall
    # time), an ambiguous one its first occurrence.
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def parse_hhmm(value: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except (AttributeError, ValueError) as exc:
        raise ValueError(BAD_LOCAL_TIME.format(value=value)) from exc


def quiet_hours() -> tuple[time, time] | None:
    value = campaigns_settings().QUIET_HOURS
    if not value:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(BAD_QUIET_HOURS.format(value=value))
    try:
        return parse_hhmm(value[0]), parse_hhmm(value[1])
    except ValueError as exc:
        raise ValueError(BAD_QUIET_HOURS.format(value=value)) from exc


def out_of_quiet_hours(instant: datetime, zone: ZoneInfo) -> datetime:
    """``instant`` if it is outside quiet hours in ``zone``; else the end of those quiet hours."""
    window = quiet_hours()
    if window is None:
        return instant
    start, end = window
    local = instant.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    overnight = start > end  # e.g. 21:00 -> 08:00
    inside = (clock >= start or clock < end) if overnight else (start <= clock < end)
    if not inside:
        return instant
    end_day = local.date() + timedelta(days=1) if overnight and clock >= start else local.date()
    return local_instant(day=end_day, at=end, zone=zone)


def audience_time_zones(*, campaign: Campaign) -> dict[str, int]:
    """Zone name -> number of audience customers in it."""
    from campaigns.selectors import campaign_audience

    default = shop_time_zone().key
    counts: dict[str, int] = defaultdict(int)
    rows = campaign_audience(campaign=campaign).values_list("country", "attributes__timezone")
    for country, attribute in rows.iterator(chunk_size=5000):
        counts[customer_time_zone_name(attribute=attribute, country=country, default=default)] += 1
    return dict(counts)


@transaction.atomic
def campaign_plan_local_send(*, campaign: Campaign, day: date, at: time | str,
                             now: datetime | None = None) -> list[SendWave]:
    """Schedule ``campaign`` for ``day`` at ``at`` in each recipient's time zone; returns the waves.

    Waves already in the past are due at once. Replanning replaces the planned waves.
    """
    at = parse_hhmm(at) if isinstance(at, str) else at
    now = now or timezone.now()
    if campaign.status in (Campaign.Status.BUILDING, Campaign.Status.SENDING):
        raise CampaignStateError(f"Campaign {campaign.pk} is {campaign.status}: schedule it when it finishes.")
    if campaign.channel != Campaign.Channel.EMAIL:
        raise CampaignStateError(f"Campaign {campaign.pk} is not an e-mail campaign: local send times do not apply.")
    if campaign.periodic_task_id:
        raise CampaignStateError(f"Campaign {campaign.pk} is recurring: local send times are for one-off campaigns.")
    by_instant: dict[datetime, list[tuple[str, int]]] = defaultdict(list)
    for name, count in sorted(audience_time_zones(campaign=campaign).items()):
        zone = ZoneInfo(name)
        instant = out_of_quiet_hours(local_instant(day=day, at=at, zone=zone), zone)
        by_instant[instant].append((name, count))
    if by_instant and all(instant < now - timedelta(minutes=1) for instant in by_instant):
        raise ValueError(ALL_PAST.format(day=day.isoformat(), at=at.strftime("%H:%M")))
    SendWave.objects.filter(campaign=campaign, status=SendWave.Status.PLANNED).delete()
    LocalSendPlan.objects.update_or_create(
        campaign=campaign, defaults={"day": day, "local_time": at, "created_at": now, "built_run": None}
    )
    waves = [
        SendWave.objects.create(campaign=campaign, send_at=instant, time_zones=[n for n, _ in zones],
                                customers=sum(c for _, c in zones))
        for instant, zones in sorted(by_instant.items())
    ]
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.SCHEDULED, send_at=waves[0].send_at if waves else None,
    )
    campaign.refresh_from_db()
    return waves


def local_waves_dispatch_due(*, now: datetime | None = None) -> list[int]:
    """Claim every planned wave whose time has come (once each) and start it; returns wave ids."""
    from crm.jobs import enqueue

    now = now or timezone.now()
    started = []
    due = SendWave.objects.filter(status=SendWave.Status.PLANNED, send_at__lte=now).exclude(
        campaign__status__in=[Campaign.Status.PAUSED, Campaign.Status.CANCELLED]
    ).order_by("send_at")
    for wave_id in list(due.values_list("pk", flat=True)):
        if SendWave.objects.filter(pk=wave_id, status=SendWave.Status.PLANNED).update(
            status=SendWave.Status.SENT, started_at=now
        ):
            started.append(wave_id)
            enqueue("campaigns.wave_run", wave_id)
    return started


def _wave_recipient_ids(campaign: Campaign, wave: SendWave, last: bool) -> list[int]:
    pending = Recipient.objects.filter(
        campaign=campaign, run=campaign.current_run, state=Recipient.State.PENDING
    ).order_by("pk")
    if last:
        return list(pending.values_list("pk", flat=True))
    zones, default = set(wave.time_zones), shop_time_zone().key
    rows = pending.values_list("pk", "customer__country", "customer__attributes__timezone")
    return [
        pk for pk, country, attribute in rows
        if customer_time_zone_name(attribute=attribute, country=country, default=default) in zones
    ]


def campaign_wave_run(*, wave_id: int) -> dict:
    """One wave: build the run on the first wave, then send this wave's zones (the last: all pending)."""
    from campaigns.services.send import campaign_send_recipients

    wave = SendWave.objects.select_related("campaign").get(pk=wave_id)
    campaign = wave.campaign
    if campaign.status in (Campaign.Status.PAUSED, Campaign.Status.CANCELLED):
        SendWave.objects.filter(pk=wave.pk).update(status=SendWave.Status.PLANNED, started_at=None)
        return {"wave_id": wave.pk, "skipped": campaign.status}
    plan = LocalSendPlan.objects.filter(campaign=campaign).first()
    if plan is not None and plan.built_run is None:  # the first wave builds from the latest scores
        campaign_build(campaign=campaign)
        campaign.refresh_from_db()
        LocalSendPlan.objects.filter(campaign=campaign).update(built_run=campaign.current_run)
    last = not SendWave.objects.filter(campaign=campaign, status=SendWave.Status.PLANNED).exists()
    ids = _wave_recipient_ids(campaign, wave, last)
    report = campaign_send_recipients(campaign=campaign, recipient_ids=ids, finish=last)
    return {"wave_id": wave.pk, "recipients": len(ids), "sent": report.sent, "last": last}


def recipients_outside_quiet_hours(*, campaign: Campaign, recipient_ids: list[int],
                                   now: datetime | None = None) -> tuple[list[int], int]:
    """For a send that starts now: the recipients it may mail now, and how many wait for a wave.

    Those whose local time is inside the shop's quiet hours stay pending; one ``SendWave`` per
    quiet-hours end instant sends them then (the run closes after the last wave).
    """
    if quiet_hours() is None or not recipient_ids:
        return recipient_ids, 0
    now = now or timezone.now()
    default = shop_time_zone().key
    wanted = set(recipient_ids)
    rows = Recipient.objects.filter(campaign=campaign, run=campaign.current_run).values_list(
        "pk", "customer__country", "customer__attributes__timezone")
    now_ids: list[int] = []
    later: dict[datetime, tuple[set[str], list[int]]] = defaultdict(lambda: (set(), []))
    for pk, country, attribute in rows.iterator(chunk_size=5000):
        if pk not in wanted:
            continue
        name = customer_time_zone_name(attribute=attribute, country=country, default=default)
        instant = out_of_quiet_hours(now, ZoneInfo(name))
        if instant <= now:
            now_ids.append(pk)
        else:
            later[instant][0].add(name)
            later[instant][1].append(pk)
    for instant, (zones, ids) in later.items():
        wave, created = SendWave.objects.get_or_create(
            campaign=campaign, send_at=instant, defaults={"time_zones": sorted(zones), "customers": len(ids)})
        if not created:
            SendWave.objects.filter(pk=wave.pk).update(
                time_zones=sorted(set(wave.time_zones) | zones), customers=len(ids), status=SendWave.Status.PLANNED)
    return sorted(now_ids), sum(len(ids) for _, ids in later.values())

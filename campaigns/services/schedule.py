"""A campaign's lifecycle: schedule once or on a crontab, dispatch due ones, run (build + send), pause, cancel."""
from __future__ import annotations

import json
import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from campaigns.models import Campaign, LocalSendPlan, SendWave
from campaigns.services.build import CampaignStateError, campaign_build

logger = logging.getLogger(__name__)

SCHEDULE_ONE_OF = "Give either a send time or a crontab, not both (and not neither)."
BAD_CRONTAB = "A crontab has five fields: minute hour day-of-month month day-of-week; got {value!r}."
SEND_AT_IN_PAST = "The send time {value} is in the past."
RUN_TASK = "campaigns.tasks.campaign_run_task"


def _crontab(expression: str) -> CrontabSchedule:
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError(BAD_CRONTAB.format(value=expression))
    minute, hour, day_of_month, month_of_year, day_of_week = parts
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
        day_of_week=day_of_week, timezone=settings.TIME_ZONE,
    )
    return schedule


@transaction.atomic
def campaign_schedule(*, campaign: Campaign, send_at: datetime | None = None, crontab: str | None = None) -> Campaign:
    """Send once at ``send_at``, or on every tick of ``crontab`` (each tick is a new run)."""
    if (send_at is None) == (not crontab):
        raise ValueError(SCHEDULE_ONE_OF)
    if campaign.status in (Campaign.Status.BUILDING, Campaign.Status.SENDING):
        raise CampaignStateError(f"Campaign {campaign.pk} is {campaign.status}: schedule it when it finishes.")
    if send_at is not None:
        if send_at < timezone.now() - timezone.timedelta(minutes=1):
            raise ValueError(SEND_AT_IN_PAST.format(value=send_at.isoformat()))
        if campaign.periodic_task_id:
            PeriodicTask.objects.filter(pk=campaign.periodic_task_id).delete()
            campaign.periodic_task = None
        campaign.send_at = send_at
    else:
        task, _ = PeriodicTask.objects.update_or_create(
            name=f"campaign {campaign.pk}",
            defaults={"task": RUN_TASK, "args": json.dumps([campaign.pk]), "crontab": _crontab(crontab),
                      "interval": None, "enabled": True, "description": f"Recurring campaign: {campaign.name}"},
        )
        campaign.periodic_task = task
        campaign.send_at = None
    campaign.status = Campaign.Status.SCHEDULED
    campaign.save(update_fields=["periodic_task", "send_at", "status", "updated_at"])
    local_plan_clear(campaign=campaign)  # a plain schedule replaces a "local time" one
    return campaign


def local_plan_clear(*, campaign: Campaign) -> None:
    LocalSendPlan.objects.filter(campaign=campaign).delete()
    SendWave.objects.filter(campaign=campaign, status=SendWave.Status.PLANNED).delete()


def campaign_dispatch_due(*, now: datetime | None = None) -> list[int]:
    """Start every one-off campaign whose send time has passed; a conditional update claims each once."""
    from crm.jobs import enqueue

    now = now or timezone.now()
    due = Campaign.objects.filter(
        status=Campaign.Status.SCHEDULED, send_at__lte=now, periodic_task__isnull=True,
        local_send_plan__isnull=True,  # local-time campaigns go wave by wave (services/local_time.py)
    ).values_list("pk", flat=True)
    started = []
    for campaign_id in list(due):
        claimed = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SCHEDULED).update(
            status=Campaign.Status.READY
        )
        if claimed:
            started.append(campaign_id)
            enqueue("campaigns.campaign_run", campaign_id)
    from campaigns.services.local_time import local_waves_dispatch_due

    local_waves_dispatch_due(now=now)
    return started


def campaign_run(*, campaign: Campaign) -> dict:
    """One run: build (a recurring campaign: a new run from the latest scores) then send."""
    from campaigns.services.send import campaign_send

    if campaign.status in (Campaign.Status.PAUSED, Campaign.Status.CANCELLED):
        return {"campaign_id": campaign.pk, "skipped": campaign.status}
    run = campaign.current_run + 1 if campaign.is_recurring else max(campaign.current_run, 1)
    built = campaign_build(campaign=campaign, run=run)
    report = {"campaign_id": campaign.pk, "run": run, "built": built.by_state}
    if campaign.channel == Campaign.Channel.EMAIL:
        sent = campaign_send(campaign=campaign, wait=False)
        report["sent"] = sent.sent
    elif campaign.is_recurring:
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    return report


def campaign_pause(*, campaign: Campaign) -> bool:
    """Stop a campaign: running batches stop at their next check, a recurring schedule is disabled."""
    paused = Campaign.objects.filter(
        pk=campaign.pk, status__in=[Campaign.Status.SENDING, Campaign.Status.SCHEDULED, Campaign.Status.READY]
    ).update(status=Campaign.Status.PAUSED)
    if campaign.periodic_task_id:
        PeriodicTask.objects.filter(pk=campaign.periodic_task_id).update(enabled=False)
    campaign.refresh_from_db()
    return bool(paused)


def campaign_resume(*, campaign: Campaign) -> Campaign:
    """Undo a pause: back to scheduled (a schedule exists) or ready (send again to continue)."""
    if campaign.status != Campaign.Status.PAUSED:
        raise CampaignStateError(f"Campaign {campaign.pk} is {campaign.status}, not paused.")
    if campaign.periodic_task_id:
        PeriodicTask.objects.filter(pk=campaign.periodic_task_id).update(enabled=True)
    scheduled = campaign.periodic_task_id or (campaign.send_at and campaign.send_at > timezone.now())
    campaign.status = Campaign.Status.SCHEDULED if scheduled else Campaign.Status.READY
    campaign.save(update_fields=["status", "updated_at"])
    return campaign


CANCELLABLE = (
    Campaign.Status.SCHEDULED, Campaign.Status.BUILDING, Campaign.Status.READY, Campaign.Status.SENDING,
    Campaign.Status.PAUSED, Campaign.Status.FAILED,
)
NOT_CANCELLABLE = "Campaign {id} is {status}: there is nothing to cancel."


@transaction.atomic
def campaign_cancel(*, campaign: Campaign) -> Campaign:
    """The way out of any in-flight state, including a ``sending`` or ``building`` whose worker died.

    A campaign that never mailed anyone goes back to ``draft`` (edit it, build, send again); one that
    did becomes ``cancelled`` (its history stays; a rebuild makes it ready again). Batches still
    running stop at their next check, pending recipients stay pending, a recurring schedule is
    disabled and a one-off send time cleared. Editing and deleting work again afterwards.
    """
    from campaigns.models import Recipient

    touched = Recipient.objects.filter(campaign=campaign).exclude(
        state__in=[Recipient.State.PENDING, Recipient.State.SKIPPED, Recipient.State.HOLDOUT]
    ).exists()
    target = Campaign.Status.CANCELLED if touched else Campaign.Status.DRAFT
    changed = Campaign.objects.filter(pk=campaign.pk, status__in=CANCELLABLE).update(
        status=target, send_at=None, updated_at=timezone.now()
    )
    campaign.refresh_from_db()
    if not changed:
        raise CampaignStateError(NOT_CANCELLABLE.format(id=campaign.pk, status=campaign.status))
    if campaign.periodic_task_id:
        PeriodicTask.objects.filter(pk=campaign.periodic_task_id).update(enabled=False)
    logger.info("campaign %s cancelled: now %s", campaign.pk, campaign.status)
    return campaign

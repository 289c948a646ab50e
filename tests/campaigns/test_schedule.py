"""Scheduling: the dispatcher starts due one-offs once; a recurring tick rebuilds as a new run."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from campaigns.models import Campaign, Recipient
from campaigns.services.schedule import BAD_CRONTAB, SCHEDULE_ONE_OF, campaign_schedule
from campaigns.tasks import campaign_dispatch_due_task, campaign_run_task

pytestmark = pytest.mark.django_db


def test_dispatcher_starts_due_one_off_campaigns_once(campaign, make_customers, django_capture_on_commit_callbacks):
    # given
    make_customers(2)
    campaign_schedule(campaign=campaign, send_at=timezone.now() + timedelta(minutes=5))
    later = Campaign.objects.create(name="later")
    campaign_schedule(campaign=later, send_at=timezone.now() + timedelta(days=1))
    # when: the beat tick before the time, then after it, twice
    assert campaign_dispatch_due_task.delay().get() == []
    Campaign.objects.filter(pk=campaign.pk).update(send_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        started = campaign_dispatch_due_task.delay().get()
    again = campaign_dispatch_due_task.delay().get()
    # then
    assert (started, again) == ([campaign.pk], [])
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT and len(mail.outbox) == 2
    assert Campaign.objects.get(pk=later.pk).status == Campaign.Status.SCHEDULED


def test_recurring_campaign_gets_a_crontab_task_and_each_tick_is_a_new_run(campaign, make_customers):
    # given
    make_customers(2)
    campaign_schedule(campaign=campaign, crontab="0 9 * * 1")
    task = PeriodicTask.objects.get(campaign=campaign)
    assert (task.task, task.args, task.crontab.hour, task.crontab.day_of_week) == (
        "campaigns.tasks.campaign_run_task", f"[{campaign.pk}]", "9", "1")
    # when: two ticks
    campaign_run_task.delay(campaign.pk)
    Campaign.objects.filter(pk=campaign.pk).update(frequency_cap_count=0)
    campaign_run_task.delay(campaign.pk)
    # then
    campaign.refresh_from_db()
    assert campaign.current_run == 2 and campaign.status == Campaign.Status.SCHEDULED
    assert sorted(Recipient.objects.values_list("run", flat=True)) == [1, 1, 2, 2]
    assert len(mail.outbox) == 4


def test_schedule_rejects_bad_input(campaign):
    with pytest.raises(ValueError, match=re.escape(SCHEDULE_ONE_OF)):
        campaign_schedule(campaign=campaign)
    with pytest.raises(ValueError, match="five fields"):
        campaign_schedule(campaign=campaign, crontab="0 9 *")
    assert "five fields" in BAD_CRONTAB


def test_setup_periodic_tasks_creates_the_dispatcher_idempotently():
    call_command("setup_periodic_tasks")
    call_command("setup_periodic_tasks")
    task = PeriodicTask.objects.get(task="campaigns.tasks.campaign_dispatch_due_task")
    assert task.crontab.minute == "*" and task.enabled


def test_setup_periodic_tasks_schedules_the_nightly_refresh_once():
    call_command("setup_periodic_tasks")
    call_command("setup_periodic_tasks")
    refresh = PeriodicTask.objects.get(task="recommendations.tasks.refresh_task")
    assert (refresh.crontab.hour, refresh.crontab.minute) == ("2", "30")

"""Create (or update) the campaigns' beat entries in django-celery-beat's DatabaseScheduler.

Run once after deploying (idempotent). Recurring campaigns get their own PeriodicTask when they are
scheduled (``manage.py campaign schedule ID --cron ...``); this sets up the dispatcher of one-offs.
"""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand
from django_celery_beat.models import CrontabSchedule, PeriodicTask

DISPATCHER = "campaigns: dispatch due one-off campaigns"
WEBHOOK_RETRIES = "campaigns: retry due outbound webhooks"
REFRESH = "recommendations: nightly embed, train, evaluate, promote, score"


class Command(BaseCommand):
    help = "Create the periodic tasks (beat, DatabaseScheduler). Idempotent: run on every deploy."

    def handle(self, *args, **options) -> None:
        # https://crontab.guru/#*_*_*_*_* : every minute
        every_minute, _ = CrontabSchedule.objects.get_or_create(
            minute="*", hour="*", day_of_month="*", month_of_year="*", day_of_week="*", timezone=settings.TIME_ZONE
        )
        task, created = PeriodicTask.objects.update_or_create(
            name=DISPATCHER,
            defaults={"task": "campaigns.tasks.campaign_dispatch_due_task", "crontab": every_minute,
                      "interval": None, "enabled": True},
        )
        self.stdout.write(f"{'created' if created else 'updated'}: {task.name}")
        task, created = PeriodicTask.objects.update_or_create(
            name=WEBHOOK_RETRIES,
            defaults={"task": "campaigns.tasks.webhook_retry_due_task", "crontab": every_minute,
                      "interval": None, "enabled": True},
        )
        self.stdout.write(f"{'created' if created else 'updated'}: {task.name}")
        # https://crontab.guru/#30_2_*_*_* : at 02:30 every night, before the morning's campaigns build
        nightly, _ = CrontabSchedule.objects.get_or_create(
            minute="30", hour="2", day_of_month="*", month_of_year="*", day_of_week="*", timezone=settings.TIME_ZONE
        )
        task, created = PeriodicTask.objects.get_or_create(
            name=REFRESH,
            defaults={"task": "recommendations.tasks.refresh_task", "crontab": nightly, "enabled": True},
        )
        self.stdout.write(f"{'created' if created else 'kept (edit it in the admin)'}: {task.name}")

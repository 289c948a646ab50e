"""Celery tasks of campaigns: thin interfaces that fetch by id and call a service."""
from __future__ import annotations

from celery import shared_task

from campaigns.services.send import SEND_RETRY, TRANSIENT_SEND_ERRORS
from crm.jobs import enqueuer


@shared_task(
    name="campaigns.tasks.campaign_send_batch_task",
    autoretry_for=TRANSIENT_SEND_ERRORS,
    retry_backoff=SEND_RETRY.worker_backoff,
    retry_backoff_max=SEND_RETRY.backoff_max,
    retry_jitter=True,
    retry_kwargs={"max_retries": SEND_RETRY.max_retries},
)
def campaign_send_batch_task(recipient_ids: list[int]) -> dict[str, int]:
    """Send one batch; transient errors retry the batch, which only claims rows still pending."""
    from campaigns.models import Recipient
    from campaigns.services.send import campaign_send_finish, recipient_batch_send

    result = recipient_batch_send(recipient_ids=recipient_ids)
    campaign_id = Recipient.objects.filter(pk__in=recipient_ids[:1]).values_list("campaign_id", flat=True).first()
    if campaign_id is not None:
        campaign_send_finish(campaign_id=campaign_id)
    return result.as_dict()


@shared_task(name="campaigns.tasks.campaign_run_task")
def campaign_run_task(campaign_id: int) -> dict:
    """Build and send one run of a campaign (a due one-off, or a recurring campaign's crontab tick)."""
    from campaigns.models import Campaign
    from campaigns.services.schedule import campaign_run

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return {"campaign_id": campaign_id, "skipped": "deleted"}
    return campaign_run(campaign=campaign)


@shared_task(name="campaigns.tasks.campaign_dispatch_due_task")
def campaign_dispatch_due_task() -> list[int]:
    """Every minute (beat): start the one-off campaigns whose send time has come."""
    from campaigns.services.schedule import campaign_dispatch_due

    return campaign_dispatch_due()


@shared_task(name="campaigns.tasks.recipient_resend_task")
def recipient_resend_task(recipient_id: int) -> str:
    """A soft-bounced recipient's next try."""
    from campaigns.services.deliverability import recipient_resend

    return recipient_resend(recipient_id=recipient_id)


@shared_task(name="campaigns.tasks.webhook_deliver_task")
def webhook_deliver_task(delivery_id: int) -> str:
    """One attempt at an outbound webhook; a failure schedules the next one after the backoff."""
    from celery import current_app
    from django.utils import timezone

    from campaigns.services.webhooks_out import webhook_deliver

    delivery = webhook_deliver(delivery_id=delivery_id)
    if delivery is None:
        return "not due"
    if delivery.status == delivery.Status.PENDING and not current_app.conf.task_always_eager:
        countdown = max((delivery.next_attempt_at - timezone.now()).total_seconds(), 0)
        webhook_deliver_task.apply_async((delivery_id,), countdown=countdown)
    return delivery.status


@shared_task(name="campaigns.tasks.webhook_retry_due_task")
def webhook_retry_due_task() -> int:
    """Every minute (beat): deliveries whose retry is due, in case a countdown task was lost."""
    from campaigns.services.webhooks_out import webhook_deliveries_due

    due = webhook_deliveries_due()
    for pk in due:
        webhook_deliver_task.delay(pk)
    return len(due)


@shared_task(name="campaigns.tasks.recommendations_refreshed_emit_task")
def recommendations_refreshed_emit_task(version_id: int, customer_ids: list[int] | None = None) -> int:
    from campaigns.services.webhooks_out import recommendations_refreshed_emit

    return recommendations_refreshed_emit(version_id=version_id, customer_ids=customer_ids)


@shared_task(name="campaigns.tasks.campaign_wave_run_task")
def campaign_wave_run_task(wave_id: int) -> dict:
    """One local-time wave of a campaign (built on the first wave)."""
    from campaigns.services.local_time import campaign_wave_run

    return campaign_wave_run(wave_id=wave_id)


# --- how the services' jobs are enqueued (crm.jobs): the only place campaigns enqueues tasks -------


@enqueuer("campaigns.send_batch")
def _enqueue_send_batch(recipient_ids: list[int]) -> None:
    campaign_send_batch_task.delay_on_commit(recipient_ids)


@enqueuer("campaigns.campaign_run")
def _enqueue_campaign_run(campaign_id: int) -> None:
    campaign_run_task.delay_on_commit(campaign_id)


@enqueuer("campaigns.wave_run")
def _enqueue_wave_run(wave_id: int) -> None:
    campaign_wave_run_task.delay_on_commit(wave_id)


@enqueuer("campaigns.recipient_resend")
def _enqueue_recipient_resend(recipient_id: int, *, countdown: float) -> None:
    recipient_resend_task.apply_async((recipient_id,), countdown=countdown)


@enqueuer("campaigns.webhook_deliver")
def _enqueue_webhook_deliver(delivery_id: int) -> None:
    webhook_deliver_task.delay(delivery_id)

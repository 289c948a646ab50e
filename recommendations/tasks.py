"""Celery tasks of the recommendations app: thin wrappers around services, routed to the ``gpu`` queue.

Routing is by module (``recommendations.tasks.*`` -> ``gpu``, see crm/celery.py), so GPU nodes
consume exactly the embedding, training and scoring work.
"""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from crm.jobs import enqueuer

TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


@shared_task(name="recommendations.tasks.item_embeddings_refresh_task")
def item_embeddings_refresh_task() -> dict:
    from .services.embedding import item_embeddings_refresh

    return item_embeddings_refresh()


@shared_task(
    name="recommendations.tasks.training_run_execute_task",
    bind=True,
    autoretry_for=TRANSIENT,
    retry_backoff=30,
    retry_kwargs={"max_retries": 3},
)
def training_run_execute_task(self, run_id: int) -> int | None:
    """Train (and, when it wins or is forced, score and activate). Returns the new version's id."""
    from .models import TrainingRun
    from .services.locks import TrainingBusy
    from .services.training import training_run_execute

    run = TrainingRun.objects.get(pk=run_id)
    if run.status != TrainingRun.Status.QUEUED:
        return run.model_version_id  # a redelivered message: the run already happened or is happening
    try:
        return training_run_execute(run=run).pk
    except TrainingBusy as exc:
        if self.request.is_eager:
            # No worker to retry later (the `train` command, the demo): fail the run with the reason
            # and let the caller print it, instead of a Celery Retry traceback.
            from django.utils import timezone

            TrainingRun.objects.filter(pk=run.pk).update(
                status=TrainingRun.Status.FAILED, error=str(exc), finished_at=timezone.now()
            )
            raise
        raise self.retry(exc=exc, countdown=60, max_retries=30) from exc


@shared_task(
    name="recommendations.tasks.model_version_score_shard_task",
    autoretry_for=TRANSIENT,
    retry_backoff=10,
    retry_kwargs={"max_retries": 5},
    acks_late=True,
)
def model_version_score_shard_task(version_id: int, lo: int, hi: int) -> int:
    """Idempotent: a shard's rows are replaced, so a redelivered shard is harmless."""
    from .models import ModelVersion
    from .services.scoring import model_version_score_shard

    return model_version_score_shard(version=ModelVersion.objects.get(pk=version_id), lo=lo, hi=hi)


@shared_task(name="recommendations.tasks.model_version_scored_task")
def model_version_scored_task(version_id: int, activate: bool) -> int:
    from .models import ModelVersion
    from .services.scoring import model_version_scored

    return model_version_scored(version=ModelVersion.objects.get(pk=version_id), activate=activate).pk


@shared_task(name="recommendations.tasks.refresh_task")
def refresh_task(algorithm: str = "auto") -> int:
    """The nightly loop: embed changed items, train, evaluate, promote if better, score."""
    from .services.training import training_run_enqueue

    return training_run_enqueue(algorithm=algorithm).pk


# --- how the services' jobs are enqueued (crm.jobs): the only place this app enqueues tasks -------


@enqueuer("recommendations.training_run_execute")
def _enqueue_training_run(run_id: int):
    return training_run_execute_task.delay(run_id)


@enqueuer("recommendations.training_run_execute_here")
def _run_training_run_here(run_id: int):
    """In this process (the demo's background thread), with the task's bookkeeping; never raises."""
    return training_run_execute_task.apply(args=(run_id,), throw=False)


@enqueuer("recommendations.score_shards")
def _enqueue_score_shards(version_id: int, ranges: list[tuple[int, int]], activate: bool) -> None:
    """All shards in parallel as a chord; the callback activates the version."""
    from celery import chord

    header = [model_version_score_shard_task.si(version_id, lo, hi) for lo, hi in ranges]
    chord(header)(model_version_scored_task.si(version_id, activate))

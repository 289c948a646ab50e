"""The Celery application.

With ``CELERY_BROKER_URL`` unset, tasks run eagerly in-process (settings.CELERY_TASK_ALWAYS_EAGER),
so the product works on one laptop with nothing else running. With Redis set, workers consume two
queues: ``default`` (campaigns, sends, tracking, imports) and ``gpu`` (embedding, training,
scoring); routing is by task module/name so callers never name a queue.
"""
import os

from celery import Celery
from celery.contrib.django.task import DjangoTask
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")


class TailoredTask(DjangoTask):
    """Project-wide task base: keeps ``delay_on_commit`` and one place to hook cross-cutting behaviour."""

    abstract = True


app = Celery("tailored", task_cls=TailoredTask)
app.config_from_object("django.conf:settings", namespace="CELERY")

app.conf.task_queues = (Queue("default"), Queue("gpu"))
app.conf.task_default_queue = "default"
app.conf.task_routes = ({"recommendations.tasks.*": {"queue": "gpu"}},)
app.autodiscover_tasks()


@app.task(name="crm.tasks.ping")
def ping(value: str = "pong") -> str:
    """Health check used by operators and the worker integration test."""
    return value

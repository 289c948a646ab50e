"""A real Celery worker process consumes our queues through Redis and runs Django tasks."""
import pytest

pytestmark = pytest.mark.integration


def test_worker_answers_ping_on_both_queues_and_can_be_replaced(celery_worker_process):
    """``crm.tasks.ping`` goes through the broker and back through the Redis result backend; work queued
    while the worker is down (killed) is picked up by a replacement on the same database."""
    # given
    worker = celery_worker_process(queues=("default", "gpu"))
    # when
    on_default = worker.send_task("crm.tasks.ping", args=["hello"], queue="default")
    on_gpu = worker.send_task("crm.tasks.ping", args=["from the gpu queue"], queue="gpu")
    # then
    assert on_default.get(timeout=60) == "hello", worker.log()
    assert on_gpu.get(timeout=60) == "from the gpu queue", worker.log()
    # when
    worker.kill()
    pending = worker.send_task("crm.tasks.ping", args=["queued while down"], queue="gpu")
    replacement = celery_worker_process(queues=("gpu",))
    # then
    assert not worker.is_alive()
    assert replacement.env["DATABASE_URL"] == worker.env["DATABASE_URL"]
    assert pending.get(timeout=60) == "queued while down", replacement.log()


def test_client_process_delays_through_the_broker_and_shares_the_database(celery_worker_process):
    """A Django client process on the worker's settings enqueues (not eagerly) and sees the same rows."""
    # given
    worker = celery_worker_process(queues=("default",))
    # when
    out = worker.run_python(
        """
        from django.conf import settings
        from crm.celery import ping
        from crm.models import Customer
        assert not settings.CELERY_TASK_ALWAYS_EAGER
        Customer.objects.create(external_id="from-client")
        print(ping.delay("via delay").get(timeout=60), Customer.objects.count())
        """
    )
    # then
    assert out.split() == ["via", "delay", "1"], worker.log()
    assert "from-client" in worker.manage("customer_export", "from-client")

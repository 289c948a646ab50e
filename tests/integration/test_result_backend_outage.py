"""A task result stored while Redis is down is stored once Redis is back, instead of being lost.

A chord counts its finished header tasks in the result backend; a store that fails during a Redis
outage left ``manage.py score``'s chord without its callback, so the re-scored version was never
activated (found by bench/drill_redis_outage.py). The project's Celery settings must make the
backend wait and retry. Runs a ``redis-server`` of its own on a free port (skips without one).
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time

import pytest
from celery import Celery, states

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def late_redis(tmp_path):
    """A port where Redis is down now; ``start()`` brings it up."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    processes = []

    def start() -> None:
        processes.append(subprocess.Popen([executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                           "--dir", str(tmp_path)], stdout=subprocess.DEVNULL))

    yield port, start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def test_a_result_stored_during_a_redis_outage_is_kept_when_redis_returns(late_redis, settings):
    port, start_redis = late_redis
    app = Celery("outage-test")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(result_backend=f"redis://127.0.0.1:{port}/0", result_backend_max_sleep_between_retries_ms=500,
                    task_always_eager=False)
    outcome = {}

    def store() -> None:
        try:
            app.backend.store_result("drill-task", 42, states.SUCCESS)
            outcome["stored"] = True
        except Exception as exc:  # noqa: BLE001 - what the test reports
            outcome["error"] = repr(exc)

    # when a worker stores a result while Redis is down, and Redis comes back two seconds later
    storing = threading.Thread(target=store)
    storing.start()
    time.sleep(2)
    start_redis()
    storing.join(timeout=60)
    # then the store waited for Redis instead of failing, and the result is there
    assert outcome == {"stored": True}, outcome
    assert app.backend.get_task_meta("drill-task")["status"] == states.SUCCESS

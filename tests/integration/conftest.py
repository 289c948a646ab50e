"""Fixtures for tests that run a REAL Celery worker process against Redis and a real database.

Use ``celery_worker_process`` (see its docstring). Every integration test is skipped cleanly when
``TEST_REDIS_URL`` is unset (CI sets it, e.g. ``redis://127.0.0.1:6379/15``).

The worker cannot see the rows of pytest-django's test database (they live in an open transaction
of the test process, or in SQLite memory), so the worker and the test share a database of their
own: a migrated temporary SQLite FILE by default, or a fresh PostgreSQL database cloned from a
migrated template when ``DATABASE_URL`` is ``postgres://``. The test reads and writes it through
``worker.run_python(...)``/``worker.manage(...)`` (subprocesses with the worker's environment), never
through the ORM of the test process.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_QUEUES = ("default", "gpu")
READY_TIMEOUT_S = 90
_counter = itertools.count()


def _redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL", "")
    if not url:
        pytest.skip("TEST_REDIS_URL is unset (e.g. redis://127.0.0.1:6379/15): no real broker for a worker")
    return url


def _base_env(database_url: str, redis_url: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CELERY_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="crm.settings",
        TAILORED_ENV="development",
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=redis_url,
        CELERY_RESULT_BACKEND=redis_url,
        ARTIFACTS_DIR=str(tmp / "artifacts"),
        MEDIA_ROOT=str(tmp / "media"),
        EMAIL_URL=f"filemail://{tmp / 'mail'}",
        LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
        PYTHONUNBUFFERED="1",
    )
    return env


def _manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


# --- the shared database --------------------------------------------------------------------------


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://", "pgsql://"))


def _with_db_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _pg_admin(url: str):
    import psycopg

    url = _with_db_name(url, "postgres")
    if url.startswith("pgsql://"):
        url = "postgresql://" + url.removeprefix("pgsql://")
    return psycopg.connect(url, autocommit=True)


@pytest.fixture(scope="session")
def worker_database_template(tmp_path_factory) -> Iterator[str]:
    """A migrated database to clone per test: a SQLite file, or a PostgreSQL template database."""
    redis_url = _redis_url()
    tmp = tmp_path_factory.mktemp("worker-db")
    configured = os.environ.get("DATABASE_URL", "")
    if _is_postgres(configured):
        name = f"tailored_worker_tpl_{os.getpid()}"
        with _pg_admin(configured) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = _with_db_name(configured, name)
        _manage(_base_env(url, redis_url, tmp), "migrate", "--noinput", "-v", "0")
        yield url
        with _pg_admin(configured) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path = tmp / "template.sqlite3"
        _manage(_base_env(f"sqlite:///{path}", redis_url, tmp), "migrate", "--noinput", "-v", "0")
        yield f"sqlite:///{path}"


@contextlib.contextmanager
def _database_clone(template_url: str, tmp: Path) -> Iterator[str]:
    if _is_postgres(template_url):
        template = urlsplit(template_url).path.lstrip("/")
        name = f"tailored_worker_{os.getpid()}_{next(_counter)}"
        with _pg_admin(template_url) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        try:
            yield _with_db_name(template_url, name)
        finally:
            with _pg_admin(template_url) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        source = sqlite3.connect(template_url.removeprefix("sqlite:///"))
        path = tmp / f"worker-{next(_counter)}.sqlite3"
        target = sqlite3.connect(path)
        with target:
            source.backup(target)
        source.close()
        target.close()
        yield f"sqlite:///{path}"


# --- the worker -----------------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    """A running ``celery -A crm worker``; ``env`` is what it (and your client subprocesses) run with."""

    env: dict[str, str]
    queues: tuple[str, ...]
    log_path: Path
    process: subprocess.Popen | None = None
    _client: object | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self):
        """A Celery app in the test process bound to the same broker and result backend (no Django)."""
        if self._client is None:
            from celery import Celery

            app = Celery("tailored-test-client", broker=self.env["CELERY_BROKER_URL"],
                         backend=self.env["CELERY_RESULT_BACKEND"])
            app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
            self._client = app
        return self._client

    def send_task(self, name: str, *, args=(), kwargs=None, queue: str | None = None):
        """Enqueue a task by name through the broker; returns an AsyncResult (``.get(timeout=...)``)."""
        return self.client().send_task(name, args=list(args), kwargs=kwargs or {}, queue=queue or self.queues[0])

    def run_python(self, code: str, *, timeout: float = 300) -> str:
        """Run ``code`` in a fresh Django process on the worker's database and broker; returns stdout.

        Tasks it ``.delay()``s go through Redis to the worker (the broker is set, so nothing is eager).
        """
        script = "import django\ndjango.setup()\n" + textwrap.dedent(code)
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"client process failed:\n{done.stdout}\n{done.stderr}\n--- worker log ---\n"
                               f"{self.log()[-4000:]}")
        return done.stdout

    def manage(self, *args: str, timeout: float = 300) -> str:
        """``manage.py <args>`` on the worker's database and broker; returns stdout."""
        return _manage(self.env, *args, timeout=timeout)

    def start(self) -> WorkerProcess:
        command = [
            sys.executable, "-m", "celery", "-A", "crm", "worker", "-Q", ",".join(self.queues), "-P", "solo",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning",
            "-n", f"test-{os.getpid()}-{next(_counter)}@%h",
        ]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Block until the worker has executed ``crm.tasks.ping`` (Django loaded, queue consumed)."""
        result = self.send_task("crm.tasks.ping", args=["ready"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_alive():
                raise RuntimeError(f"the worker exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            with contextlib.suppress(Exception):
                if result.get(timeout=1) == "ready":
                    return
        raise TimeoutError(f"the worker did not answer a ping in {timeout}s:\n{self.log()[-4000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the worker abruptly (default SIGKILL), e.g. in the middle of a task."""
        if self.is_alive():
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self, timeout: float = 20) -> None:
        """Warm shutdown (SIGTERM: finish the current task), then SIGKILL if it does not exit in time."""
        if not self.is_alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


@contextlib.contextmanager
def _exclusive_broker(redis_url: str) -> Iterator[None]:
    """One worker test at a time per Redis database on this machine (queues are shared by name)."""
    digest = hashlib.sha1(redis_url.encode()).hexdigest()[:12]
    with open(Path(tempfile.gettempdir()) / f"tailored-celery-{digest}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _purge(redis_url: str, queues: tuple[str, ...]) -> None:
    """Drop messages a previous (killed) run left in our queues, so they cannot hit this test's worker."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.delete(*queues, "unacked", "unacked_index")
    client.close()


@pytest.fixture
def celery_worker_process(worker_database_template, tmp_path) -> Iterator:
    """Start real Celery workers: ``worker = celery_worker_process(queues=("default", "gpu"), env={...})``.

    Call it inside a test (any number of times); it returns a started, ready ``WorkerProcess``:

    - ``worker.env``: the environment the worker runs with. ``CELERY_BROKER_URL`` and
      ``CELERY_RESULT_BACKEND`` = ``TEST_REDIS_URL``, ``DJANGO_SETTINGS_MODULE=crm.settings``, a
      ``DATABASE_URL`` private to this test (a migrated SQLite file, or a PostgreSQL database cloned
      from a migrated template when the suite runs on PostgreSQL), temporary ``ARTIFACTS_DIR``,
      ``MEDIA_ROOT`` and a ``filemail://`` outbox. ``env={...}`` adds or overrides variables.
    - ``worker.send_task(name, args=..., kwargs=..., queue=...)`` enqueues by task name and returns an
      ``AsyncResult``; ``worker.run_python(code)`` / ``worker.manage(*args)`` run Django code or a
      command in a subprocess on the same database and broker (use them to create rows, call
      ``.delay()`` and read results back; the test process's ORM is a different database).
    - ``worker.kill()`` SIGKILLs it mid-task; ``worker.stop()`` is a warm shutdown. Call the fixture
      again to start a replacement: every worker of one test shares the test's database.
    - ``worker.log()``: its output so far (include it in assertion messages).

    ``ready=False`` skips the start-up ping (e.g. to race a worker against queued work). Queues are
    purged before the first worker starts, workers are always stopped (SIGTERM, then SIGKILL) at
    teardown, and a file lock keeps two worker tests on one Redis database from running at once.
    Skips when ``TEST_REDIS_URL`` is unset.
    """
    redis_url = _redis_url()
    workers: list[WorkerProcess] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(_exclusive_broker(redis_url))
        database_url = stack.enter_context(_database_clone(worker_database_template, tmp_path))
        base = _base_env(database_url, redis_url, tmp_path)
        (tmp_path / "mail").mkdir(exist_ok=True)
        _purge(redis_url, DEFAULT_QUEUES)

        def start(*, queues=DEFAULT_QUEUES, env: dict[str, str] | None = None, ready: bool = True) -> WorkerProcess:
            worker = WorkerProcess(env={**base, **(env or {})}, queues=tuple(queues),
                                   log_path=tmp_path / f"worker-{len(workers)}.log")
            workers.append(worker)
            worker.start()
            if ready:
                worker.wait_ready()
            return worker

        try:
            yield start
        finally:
            for worker in workers:
                worker.stop()

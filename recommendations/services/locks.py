"""A process-crash-safe lock so that two trainings never run at once.

On PostgreSQL it is a session-level advisory lock (shared by every worker on every machine, and
released by the server when a killed worker's connection drops). Elsewhere (SQLite: one machine)
it is an ``flock`` on a file next to the artefacts, released by the kernel when the process dies;
the file is named after the database, so trainings against two SQLite files of one checkout (say
the demo and a benchmark) do not block each other.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

from ..conf import recommendations_settings

LOCK_KEY = zlib.crc32(b"tailored.recommendations.training")
BUSY = "Another training run is in progress; try again when it has finished."


class TrainingBusy(RuntimeError):
    pass


# PostgreSQL advisory locks are re-entrant per session, so a second training in the same process
# would get the lock again; this process-local lock closes that gap.
_in_process = threading.Lock()


@contextmanager
def training_lock() -> Iterator[None]:
    if not _in_process.acquire(blocking=False):
        raise TrainingBusy(BUSY)
    try:
        with _database_or_file_lock():
            yield
    finally:
        _in_process.release()


def training_lock_path(database_name: str | None = None) -> Path:
    """The lock file of one database: ``training-<hash of its name>.lock`` in the artefacts folder."""
    name = str(connection.settings_dict["NAME"] if database_name is None else database_name)
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return recommendations_settings().artifacts_dir / f"training-{digest}.lock"


@contextmanager
def _database_or_file_lock() -> Iterator[None]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            if not cursor.fetchone()[0]:
                raise TrainingBusy(BUSY)
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
        return
    path = training_lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise TrainingBusy(BUSY) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

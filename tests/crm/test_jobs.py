"""Services enqueue background work by name (crm.jobs); only tasks modules enqueue tasks."""
import re
from pathlib import Path

import pytest

from crm.jobs import enqueue

ROOT = Path(__file__).resolve().parents[2]
SERVICE_FILES = [ROOT / "crm" / "services.py", *sorted(ROOT.glob("*/services/*.py"))]
TASK_IMPORT = re.compile(r"^\s*from\s+(\.+|\w+\.)tasks\s+import|^\s*import\s+\w+\.tasks\b", re.MULTILINE)


def test_no_service_imports_a_tasks_module():
    offenders = [str(p.relative_to(ROOT)) for p in SERVICE_FILES if TASK_IMPORT.search(p.read_text())]
    assert len(SERVICE_FILES) > 10 and offenders == []


def test_every_job_a_service_asks_for_is_registered():
    asked = {
        name
        for p in SERVICE_FILES
        for name in re.findall(r"enqueue\(\s*\"([\w.]+)\"", p.read_text())
    }
    from crm import jobs

    assert asked and asked <= set(jobs._ENQUEUERS), sorted(asked - set(jobs._ENQUEUERS))


def test_an_unknown_job_is_a_clear_error():
    with pytest.raises(LookupError, match="No enqueuer registered for job 'nope.nothing'"):
        enqueue("nope.nothing")

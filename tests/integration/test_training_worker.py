"""A training run executed by a real worker process: queued by the command, trained, scored by a chord."""
import json
import time

import pytest

pytestmark = pytest.mark.integration


def test_train_command_queues_and_a_worker_trains_scores_and_activates(celery_worker_process):
    # given a small shop and a worker on both queues
    worker = celery_worker_process(queues=("default", "gpu"))
    worker.manage("demo_data", "--customers", "60", "--items", "40", "--seed", "3")
    # when the command only queues (a broker is configured) ...
    out = worker.manage("train", "--algorithm", "itemknn", "--activate")
    assert "queued" in out, out
    # ... the worker trains, scores the shards (a chord on the gpu queue) and activates
    deadline = time.monotonic() + 240
    state = {}
    while time.monotonic() < deadline:
        state = json.loads(worker.run_python(
            """
            import json
            from recommendations.models import ModelVersion, TrainingRun
            run = TrainingRun.objects.get()
            active = ModelVersion.objects.filter(is_active=True).first()
            print(json.dumps({"status": run.status, "error": run.error, "task_id": run.task_id,
                              "active": active.algorithm if active else None,
                              "rows": active.recommendations.count() if active else 0}))
            """
        ))
        if state["status"] == "failed" or state["active"]:
            break
        time.sleep(2)
    # then
    assert state["status"] == "succeeded", (state, worker.log()[-3000:])
    assert state["task_id"], state
    assert state["active"] == "itemknn" and state["rows"] > 0, (state, worker.log()[-3000:])

"""Drill: Redis (broker and result backend) stopped during a scoring chord and during a campaign send.

Everything runs on servers of its own on free 127.0.0.1 ports: a private PostgreSQL cluster, a
``redis-server`` with an append-only file (stopped with SIGTERM and started again on the same port
and directory, as a production Redis with persistence restarts), a real SMTP server (aiosmtpd, its
own process) and one real Celery worker process (``celery -A crm worker -Q default,gpu``).

1. Scoring chord. A small demo shop is trained (eager) and its version activated; then
   ``manage.py score --shards N`` queues a re-score as a chord of shard tasks whose callback
   activates the new version. Redis is stopped as soon as the first shard's rows are in the
   database and started again ``--outage`` seconds later. A sampler reads, in one SQL statement
   every 50 ms, the active version and how many customers it has recommendations for.
   Pass: the active pointer never points at a version with fewer customers than a complete one
   (``half_activated_samples == 0``), and the new version becomes active, complete, after Redis is
   back (``resumed``).
2. Campaign send. A built campaign is sent with ``manage.py campaign send --async`` (one Celery task
   per batch of ``--batch-size``); Redis is stopped once a quarter of the messages reached the SMTP
   server and started again ``--outage`` seconds later.
   Pass: nobody receives two messages (``double_sends == 0``), nobody is left without a message
   unless visibly in doubt (``lost_silently == 0``), and the campaign finishes (``resumed``).

Writes bench/results/drill_redis_outage.json.

    python bench/drill_redis_outage.py [--customers 400] [--shards 60] [--outage 10]
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from drill_common import (  # bench/ helpers (this script's folder is on sys.path)
    PYTHON,
    ROOT,
    PrivatePostgres,
    RedisServer,
    SmtpSinkProcess,
    django_env,
    manage,
    run_django,
    stop_process,
    write_result,
)

RESUME_TIMEOUT_S = 300
MESSAGE_ID = re.compile(r"<c(\d+)\.r\d+\.(\d+)\.")

ACTIVE_SQL = """
SELECT v.id, v.status,
       (SELECT count(DISTINCT r.customer_id) FROM recommendations_recommendation r WHERE r.model_version_id = v.id)
FROM recommendations_modelversion v WHERE v.is_active
"""
VERSION_CUSTOMERS_SQL = ("SELECT count(DISTINCT customer_id) FROM recommendations_recommendation "
                         "WHERE model_version_id = %s")

CAMPAIGN_SETUP = """
import json
from campaigns.models import Campaign
from campaigns.services.build import campaign_build
campaign = Campaign.objects.create(name="redis outage drill", n_items=3, holdout_share=0, frequency_cap_count=0)
result = campaign_build(campaign=campaign)
print(json.dumps({"id": campaign.pk, "by_state": result.by_state}))
"""


def _connect(url: str):
    import psycopg

    return psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True)


class Worker:
    """One ``celery -A crm worker`` process on both queues (solo pool, as the integration tests run it)."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env, self.log = env, log
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Worker:
        out = self.log.open("ab")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "celery", "-A", "crm", "worker", "-Q", "default,gpu", "-P", "solo", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "-l", "info", "-n", "drill@%h"],
            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self, timeout: float = 120) -> None:
        from celery import Celery

        app = Celery("drill-client", broker=self.env["CELERY_BROKER_URL"], backend=self.env["CELERY_RESULT_BACKEND"])
        app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
        result = app.send_task("crm.tasks.ping", args=["ready"], queue="default")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited:\n{self.tail()}")
            try:
                if result.get(timeout=1) == "ready":
                    return
            except Exception:  # noqa: BLE001 - not yet
                pass
        raise TimeoutError(f"the worker did not answer a ping:\n{self.tail()}")

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def __exit__(self, *exc) -> None:
        stop_process(self.process, timeout=30, group=True)


class Sampler(threading.Thread):
    """Every ``interval`` s: (active version, its status, its customers) in one statement (one snapshot)."""

    def __init__(self, url: str, interval: float = 0.05):
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.samples: list[tuple[float, int | None, str | None, int]] = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        conn = _connect(self.url)
        while not self.stop.is_set():
            try:
                row = conn.execute(ACTIVE_SQL).fetchone()
                self.samples.append((time.monotonic(), *(row or (None, None, 0))))
            except Exception:  # noqa: BLE001 - a sampler must outlive anything
                self.errors += 1
            self.stop.wait(self.interval)
        conn.close()


def _wait(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def scoring_chord(url: str, env: dict[str, str], redis: RedisServer, shards: int, outage: float) -> dict:
    conn = _connect(url)
    v1, _, complete = conn.execute(ACTIVE_SQL).fetchone()
    sampler = Sampler(url)
    sampler.start()
    started = time.monotonic()
    queued = manage(env, "score", "--shards", str(shards), timeout=300).stdout.strip()
    v2 = conn.execute("SELECT max(id) FROM recommendations_modelversion").fetchone()[0]

    def customers(version: int) -> int:
        return conn.execute(VERSION_CUSTOMERS_SQL, [version]).fetchone()[0]

    saw_partial = _wait(lambda: customers(v2) > 0, timeout=240, interval=0.02)
    at_stop = customers(v2)
    redis.stop()
    stopped_at = time.monotonic()
    time.sleep(outage)
    during = customers(v2)
    redis.start()
    restarted_at = time.monotonic()

    def active_is_v2() -> bool:
        row = conn.execute(ACTIVE_SQL).fetchone()
        return bool(row and row[0] == v2)

    resumed = _wait(active_is_v2, timeout=RESUME_TIMEOUT_S, interval=0.2)
    finished_at = time.monotonic()
    time.sleep(0.5)
    sampler.stop.set()
    sampler.join(timeout=10)
    final = conn.execute(ACTIVE_SQL).fetchone()
    statuses = dict(conn.execute("SELECT id, status FROM recommendations_modelversion WHERE id IN (%s, %s)",
                                 [v1, v2]).fetchall())
    conn.close()
    half = [s for s in sampler.samples if s[1] is not None and s[3] < complete]
    return {
        "previous_version": v1,
        "new_version": v2,
        "shards": shards,
        "customers_in_a_complete_version": complete,
        "command_output": queued[-200:],
        "redis_stopped_after_first_shard": saw_partial,
        "new_version_customers_when_redis_stopped": at_stop,
        "new_version_customers_at_end_of_outage": during,
        "outage_s": round(restarted_at - stopped_at, 1),
        "samples": len(sampler.samples),
        "sampler_errors": sampler.errors,
        "active_versions_seen": sorted({s[1] for s in sampler.samples if s[1] is not None}),
        "half_activated_samples": len(half),
        "resumed": resumed,
        "seconds_to_activate_after_redis_back": round(finished_at - restarted_at, 1) if resumed else None,
        "final_active": {"id": final[0], "status": final[1], "customers": final[2]} if final else None,
        "final_statuses": {str(k): v for k, v in statuses.items()},
        "seconds": round(time.monotonic() - started, 1),
        "passed": bool(resumed and not half and final and final[0] == v2 and final[2] == complete),
    }


def campaign_send(url: str, env: dict[str, str], redis: RedisServer, sink: SmtpSinkProcess, outage: float) -> dict:
    built = json.loads(run_django(env, CAMPAIGN_SETUP).splitlines()[-1])
    campaign_id = built["id"]
    conn = _connect(url)
    expected = conn.execute("SELECT count(*) FROM campaigns_recipient WHERE campaign_id = %s AND state = 'pending'",
                            [campaign_id]).fetchone()[0]
    before = len(sink.messages())
    started = time.monotonic()
    queued = manage(env, "campaign", "send", str(campaign_id), "--async", timeout=300)
    reached = _wait(lambda: len(sink.messages()) - before >= max(1, expected // 4), timeout=240)
    at_stop = len(sink.messages()) - before
    redis.stop()
    stopped_at = time.monotonic()
    time.sleep(outage)
    during = len(sink.messages()) - before
    redis.start()
    restarted_at = time.monotonic()

    def finished() -> bool:
        status = conn.execute("SELECT status FROM campaigns_campaign WHERE id = %s", [campaign_id]).fetchone()[0]
        pending = conn.execute("SELECT count(*) FROM campaigns_recipient WHERE campaign_id = %s AND state = 'pending'",
                               [campaign_id]).fetchone()[0]
        return status == "sent" and pending == 0

    resumed = _wait(finished, timeout=RESUME_TIMEOUT_S, interval=0.2)
    finished_at = time.monotonic()
    time.sleep(1.0)  # anything still in flight lands before we count
    rows = conn.execute("SELECT id, email, state FROM campaigns_recipient WHERE campaign_id = %s",
                        [campaign_id]).fetchall()
    status = conn.execute("SELECT status FROM campaigns_campaign WHERE id = %s", [campaign_id]).fetchone()[0]
    conn.close()
    by_row = Counter()
    for message in sink.messages()[before:]:
        match = MESSAGE_ID.search(message["message_id"])
        if match and int(match.group(1)) == campaign_id:
            by_row[int(match.group(2))] += 1
    states = Counter(state for _, _, state in rows)
    double = [pk for pk, n in by_row.items() if n > 1]
    lost = [pk for pk, _, state in rows if by_row[pk] == 0 and state not in ("sending", "skipped", "failed")]
    in_doubt = [pk for pk, _, state in rows if state == "sending"]
    return {
        "campaign": campaign_id,
        "recipients_to_send": expected,
        "command_output": queued.stdout.strip()[-300:],
        "messages_when_redis_stopped": at_stop if reached else None,
        "messages_at_end_of_outage": during,
        "outage_s": round(restarted_at - stopped_at, 1),
        "messages_at_sink": sum(by_row.values()),
        "double_sends": len(double),
        "lost_silently": len(lost),
        "in_doubt": len(in_doubt),
        "recipient_states": dict(states),
        "campaign_status": status,
        "resumed": resumed,
        "seconds_to_finish_after_redis_back": round(finished_at - restarted_at, 1) if resumed else None,
        "seconds": round(time.monotonic() - started, 1),
        "passed": bool(resumed and not double and not lost),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--items", type=int, default=80)
    parser.add_argument("--shards", type=int, default=60)
    parser.add_argument("--outage", type=float, default=10.0, help="seconds Redis stays down")
    parser.add_argument("--batch-size", type=int, default=10, help="recipients per send task")
    parser.add_argument("--send-rate", type=float, default=25.0, help="messages per second (the throttle)")
    args = parser.parse_args()
    started = time.monotonic()
    result: dict = {"drill": "redis_outage"}
    with tempfile.TemporaryDirectory(prefix="tailored-drill-redis-") as tmp, PrivatePostgres() as pg, \
            RedisServer() as redis, SmtpSinkProcess(Path(tmp)) as sink:
        tmp_path = Path(tmp)
        url = pg.create_database("drill")
        eager = django_env(url, ARTIFACTS_DIR=str(tmp_path / "artifacts"), MEDIA_ROOT=str(tmp_path / "media"),
                           EMAIL_URL=f"smtp://127.0.0.1:{sink.port}", RECOMMENDATIONS_DEVICE="cpu")
        manage(eager, "migrate", "--noinput", "-v", "0")
        manage(eager, "demo_data", "--customers", str(args.customers), "--items", str(args.items), "--seed", "3")
        manage(eager, "train", "--algorithm", "itemknn", "--activate", timeout=900)
        broker = {**eager, "CELERY_BROKER_URL": redis.url, "CELERY_RESULT_BACKEND": redis.url,
                  "CAMPAIGNS_SEND_BATCH_SIZE": str(args.batch_size),
                  "CAMPAIGNS_SEND_RATE_PER_SECOND": str(args.send_rate)}
        worker_log = tmp_path / "worker.log"
        try:
            with Worker(broker, worker_log) as worker:
                result["scoring_chord"] = scoring_chord(url, broker, redis, args.shards, args.outage)
                result["campaign_send"] = campaign_send(url, broker, redis, sink, args.outage)
                result["worker_alive_at_end"] = worker.process.poll() is None
        finally:
            log = worker_log.read_text(errors="replace") if worker_log.exists() else ""
            result["worker_log_errors"] = sorted({line.split("] ", 1)[-1][:160] for line in log.splitlines()
                                                  if "ERROR" in line or "CRITICAL" in line})[:15]
    result["redis_stops"] = redis.stops
    result["seconds"] = round(time.monotonic() - started, 1)
    result["passed"] = bool(result.get("scoring_chord", {}).get("passed")
                            and result.get("campaign_send", {}).get("passed"))
    write_result("drill_redis_outage", result)
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()

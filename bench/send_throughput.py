"""Send throughput: 10,000 e-mails into a real SMTP server with 1 and with 4 Celery worker processes.

Each scenario builds a fresh campaign of ``--messages`` recipients on PostgreSQL, then sends it the
way production does: ``campaign_send(wait=False)`` enqueues one ``campaign_send_batch_task`` per
``SEND_BATCH_SIZE`` recipients on Redis, and real ``celery worker`` processes (prefork, ``-c N``)
claim, render, send and record them. The SMTP server is aiosmtpd in its own process
(``drill_common.SmtpSinkProcess``, no fsync) that logs every message it accepts; it advertises
PIPELINING, as production MTAs do.

Reported per scenario: the CPU the workers and the SMTP server used per message (from /proc: what
the load of other work on a shared machine cannot inflate; PostgreSQL's share is not counted),
messages/s (sent / seconds from the enqueue until no row is pending or
sending; and the sink's first-to-last arrival rate), ``duplicates`` (addresses the sink received
more than once: must be 0), ``lost`` (rows neither received nor failed, skipped or visibly in
doubt: must be 0), ``in_doubt``, the batches and the load average. ``--inline`` adds the same send
in this process (``manage.py campaign send``'s path). Writes bench/results/send_throughput.json.

    python bench/send_throughput.py [--messages 10000] [--workers 1 4] [--redis-url redis://127.0.0.1:6379/3]

The database (``DATABASE_URL``, default .../tailored_send_bench) is created when missing and wiped.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drill_common import (  # noqa: E402
    PYTHON,
    ROOT,
    SmtpSinkProcess,
    ensure_database,
    reset_bench_shop,
    stop_process,
    write_result,
)

DOMAINS = ("gmail.com", "example.com", "example.org", "outlook.com", "yahoo.com")


def generate(n_customers: int, n_items: int = 500) -> None:
    """Customers (opted in, on a few domains), items, an active version, 10 recommendations each."""
    from django.db import connection

    with connection.cursor() as cur:
        reset_bench_shop(cur, n_customers=n_customers, n_items=n_items, recs_per_customer=10, domains=DOMAINS)


def build(name: str) -> tuple[int, int]:
    """A fresh campaign over every customer (no holdout, no cap): (campaign id, pending recipients)."""
    from campaigns.models import Campaign, Recipient
    from campaigns.services.build import campaign_build

    campaign = Campaign.objects.create(name=name, n_items=5, holdout_share=0, frequency_cap_count=0)
    campaign_build(campaign=campaign)
    return campaign.pk, Recipient.objects.filter(campaign=campaign, state=Recipient.State.PENDING).count()


def states(campaign_id: int) -> dict[str, int]:
    from django.db.models import Count

    from campaigns.models import Recipient

    rows = Recipient.objects.filter(campaign_id=campaign_id).values("state").annotate(n=Count("id"))
    return {row["state"]: row["n"] for row in rows}


def wait_done(campaign_id: int, timeout: float) -> float:
    """Seconds until no row of the campaign is pending or sending (polling every 50 ms)."""
    from campaigns.models import Recipient

    started = time.monotonic()
    busy = Recipient.objects.filter(campaign_id=campaign_id, state__in=[Recipient.State.PENDING,
                                                                        Recipient.State.SENDING])
    while busy.exists():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"campaign {campaign_id} still sending after {timeout}s: {states(campaign_id)}")
        time.sleep(0.05)
    return time.monotonic() - started


def audit(campaign_id: int, sink: SmtpSinkProcess, before: int) -> dict:
    """Compare the rows with what the sink received for this campaign."""
    from campaigns.models import Recipient

    received = Counter(m["to"] for m in sink.messages()[before:])
    rows = list(Recipient.objects.filter(campaign_id=campaign_id).values_list("email", "state"))
    duplicates = sum(1 for n in received.values() if n > 1)
    lost = sum(1 for email, state in rows if not received[email] and state in ("pending", "sent"))
    sent_without_message = sum(1 for email, state in rows if state == "sent" and not received[email])
    return {"messages_at_sink": sum(received.values()), "duplicates": duplicates, "lost": lost,
            "sent_state_without_message": sent_without_message}


def arrival_rate(sink: SmtpSinkProcess, before: int) -> float | None:
    times = [m["at"] for m in sink.messages()[before:]]
    if len(times) < 2 or max(times) == min(times):
        return None
    return round((len(times) - 1) / (max(times) - min(times)), 1)


def process_tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by ``root`` and its descendants still running (/proc)."""
    parents, cpu = {}, {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for pid, seconds in cpu.items():
        node = pid
        while node and node != root:
            node = parents.get(node, 0)
        if node == root:
            total += seconds
    return total


def start_workers(env: dict[str, str], concurrency: int, log: Path) -> subprocess.Popen:
    command = [PYTHON, "-m", "celery", "-A", "crm", "worker", "-Q", "default", "-c", str(concurrency), "-P", "prefork",
               "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat",
               "-n", f"send-bench-{os.getpid()}@%h"]
    output = log.open("ab")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                               start_new_session=True)
    output.close()
    return process


def wait_workers_ready(concurrency: int, timeout: float = 120) -> None:
    from celery import current_app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = current_app.control.inspect(timeout=1.0).stats() or {}
        if any(stats.get("pool", {}).get("max-concurrency") == concurrency for stats in replies.values()):
            return
        time.sleep(0.5)
    raise TimeoutError("the Celery workers did not start")


def scenario_workers(n_workers: int, sink: SmtpSinkProcess, env: dict[str, str], log: Path, timeout: float) -> dict:
    from campaigns.models import Campaign
    from campaigns.services.send import campaign_send

    campaign_id, pending = build(f"throughput {n_workers} workers")
    workers = start_workers(env, n_workers, log)
    try:
        wait_workers_ready(n_workers)
        before = len(sink.messages())
        load_before = os.getloadavg()[0]
        cpu_before = process_tree_cpu(workers.pid), process_tree_cpu(sink.process.pid)
        started = time.monotonic()
        report = campaign_send(campaign=Campaign.objects.get(pk=campaign_id), wait=False)
        seconds = (time.monotonic() - started) + wait_done(campaign_id, timeout)
        cpu_workers = process_tree_cpu(workers.pid) - cpu_before[0]
        cpu_sink = process_tree_cpu(sink.process.pid) - cpu_before[1]
        load_after = os.getloadavg()[0]
    finally:
        stop_process(workers, timeout=30, group=True)
    final = states(campaign_id)
    return {
        "workers": n_workers, "mode": f"celery worker -c {n_workers} (prefork processes) on Redis",
        "recipients": pending, "batches": report.batches, "seconds": round(seconds, 2),
        "messages_per_second": round(final.get("sent", 0) / seconds, 1),
        "sink_arrival_rate": arrival_rate(sink, before),
        "sent": final.get("sent", 0), "failed": final.get("failed", 0), "in_doubt": final.get("sending", 0),
        **audit(campaign_id, sink, before),
        "cpu_seconds": {"workers": round(cpu_workers, 1), "smtp_server": round(cpu_sink, 1)},
        "cpu_ms_per_message": {"workers": round(1000 * cpu_workers / max(pending, 1), 2),
                               "smtp_server": round(1000 * cpu_sink / max(pending, 1), 2)},
        "load_average_1m": [round(load_before, 2), round(load_after, 2)],
    }


def scenario_inline(sink: SmtpSinkProcess) -> dict:
    from campaigns.models import Campaign
    from campaigns.services.send import campaign_send

    campaign_id, pending = build("throughput inline")
    before = len(sink.messages())
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    report = campaign_send(campaign=Campaign.objects.get(pk=campaign_id), wait=True)
    seconds = time.monotonic() - started
    return {
        "workers": 1, "mode": "inline (manage.py campaign send: this process)", "recipients": pending,
        "batches": report.batches, "seconds": round(seconds, 2), "messages_per_second": round(report.sent / seconds, 1),
        "sink_arrival_rate": arrival_rate(sink, before), "sent": report.sent, "failed": report.failed,
        "in_doubt": report.in_doubt, **audit(campaign_id, sink, before),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 4], help="worker processes per scenario")
    parser.add_argument("--inline", action="store_true", help="also send inline in this process")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"))
    parser.add_argument("--batch-size", type=int, default=200, help="SEND_BATCH_SIZE: recipients per task")
    parser.add_argument("--claim-size", type=int, default=None, help="SEND_CLAIM_SIZE (default: the setting's)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per scenario")
    parser.add_argument("--out", default="send_throughput")
    args = parser.parse_args()

    database_url = os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tailored_send_bench")
    if not database_url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/send_throughput.py needs PostgreSQL: set DATABASE_URL to a private, disposable database.")
    ensure_database(database_url)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tailored-send-bench-") as tmp, \
            SmtpSinkProcess(Path(tmp), fsync=False) as sink:
        extra = {"CAMPAIGNS_SEND_BATCH_SIZE": str(args.batch_size)}
        if args.claim_size is not None:
            extra["CAMPAIGNS_SEND_CLAIM_SIZE"] = str(args.claim_size)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "PYTEST_"))}
        env.update(DJANGO_SETTINGS_MODULE="crm.settings", TAILORED_ENV="development", LOG_LEVEL="WARNING",
                   DATABASE_URL=database_url, EMAIL_URL=f"smtp://127.0.0.1:{sink.port}",
                   CELERY_BROKER_URL=args.redis_url, CELERY_RESULT_BACKEND="", PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])), **extra)
        os.environ.update(env)
        import django

        django.setup()
        from celery import current_app
        from django.core.mail.utils import DNS_NAME
        from django.core.management import call_command

        DNS_NAME._fqdn = "localhost"
        call_command("migrate", verbosity=0)
        current_app.control.purge()  # nothing left over on this Redis db from an aborted run
        generate(args.messages)
        from campaigns.conf import campaigns_settings

        settings = campaigns_settings()
        scenarios = []
        if args.inline:
            scenarios.append(scenario_inline(sink))
            print(json.dumps(scenarios[-1]), flush=True)
        for n in args.workers:
            scenarios.append(scenario_workers(n, sink, env, Path(tmp) / f"worker-{n}.log", args.timeout))
            print(json.dumps(scenarios[-1]), flush=True)
    result = {
        "benchmark": "send_throughput",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "database": "postgresql",
        "smtp_server": "aiosmtpd, own process (bench/drill_common.py smtp-sink), advertises PIPELINING",
        "broker": args.redis_url, "messages": args.messages,
        "settings": {"SEND_BATCH_SIZE": settings.SEND_BATCH_SIZE, "SEND_CLAIM_SIZE": settings.SEND_CLAIM_SIZE,
                     "SEND_RATE_LIMITS": settings.SEND_RATE_LIMITS},
        "target": ">= 500 messages/s with 4 workers, 0 duplicates, 0 lost",
        "scenarios": scenarios,
        "passed": all(s["duplicates"] == 0 and s["lost"] == 0 for s in scenarios),
        "seconds": round(time.monotonic() - started, 1),
    }
    write_result(args.out, result)
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()

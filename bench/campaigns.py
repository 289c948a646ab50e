"""Campaign benchmark: build 100,000 recipients x 5 items, then send 5,000 e-mails into a local SMTP sink.

Uses a private PostgreSQL database (created when missing, wiped at the start)::

    python bench/campaigns.py     # DATABASE_URL defaults to .../tailored_campaign_bench
    dropdb -h 127.0.0.1 -U postgres tailored_campaign_bench    # afterwards, if you like

Writes bench/results/campaigns.json. Target: the build within 60 s on a 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from drill_common import ensure_database, free_port, reset_bench_shop  # noqa: E402  (bench/ helpers)

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tailored_campaign_bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def generate(n_customers: int, n_items: int, recs_per_customer: int, n_send: int) -> dict:
    """Customers, items, an active version and its recommendations, with set-based SQL (seconds)."""
    from django.db import connection

    started = time.monotonic()
    with connection.cursor() as cur:
        version_id = reset_bench_shop(
            cur, n_customers=n_customers, n_items=n_items, recs_per_customer=recs_per_customer,
            attributes_first=(n_send, '{"bench_send": true}'), opt_out_every=20, out_of_stock_every=50)
    return {"generate_seconds": round(time.monotonic() - started, 2), "model_version_id": version_id}


def bench_build(n_items: int) -> dict:
    from campaigns.models import Campaign, Recipient
    from campaigns.services.build import campaign_build

    campaign = Campaign.objects.create(name="bench build", n_items=n_items, holdout_share=0.1)
    started = time.monotonic()
    result = campaign_build(campaign=campaign)
    seconds = time.monotonic() - started
    pending = Recipient.objects.filter(campaign=campaign).exclude(items=[])
    started = time.monotonic()
    rebuild = campaign_build(campaign=campaign)
    return {
        "customers": result.customers,
        "recipients": Recipient.objects.filter(campaign=campaign).count(),
        "by_state": result.by_state,
        "with_items": pending.count(),
        "build_seconds": round(seconds, 2),
        "recipients_per_second": round(result.customers / seconds),
        "rebuild_seconds": round(time.monotonic() - started, 2),
        "rebuild_updated": rebuild.updated,
    }


def bench_send(n_send: int, n_items: int, batch_size: int) -> dict:
    from django.conf import settings

    from campaigns.models import Campaign, Recipient
    from campaigns.services.build import campaign_build
    from campaigns.services.send import campaign_send
    from crm.models import Segment

    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
        settings.CAMPAIGNS = {**settings.CAMPAIGNS, "SEND_BATCH_SIZE": batch_size, "SEND_RATE_PER_SECOND": 0}
        from django.core.mail.utils import DNS_NAME

        DNS_NAME._fqdn = "localhost"
        segment = Segment.objects.create(name="bench send", rules={
            "match": "all", "conditions": [{"field": "attribute", "key": "bench_send", "op": "eq", "value": True}]})
        campaign = Campaign.objects.create(name="bench send", audience=segment, n_items=n_items, holdout_share=0,
                                           frequency_cap_count=0)
        campaign_build(campaign=campaign)
        to_send = Recipient.objects.filter(campaign=campaign, state=Recipient.State.PENDING).count()
        started = time.monotonic()
        report = campaign_send(campaign=campaign, wait=True)
        seconds = time.monotonic() - started
    finally:
        sink.terminate()
        sink.wait(10)
    return {
        "pending_before": to_send,
        "sent": report.sent,
        "failed": report.failed,
        "in_doubt": report.in_doubt,
        "batches": report.batches,
        "batch_size": batch_size,
        "send_seconds": round(seconds, 2),
        "messages_per_second": round(report.sent / seconds, 1) if seconds else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=5000, help="Catalogue size.")
    parser.add_argument("--recs", type=int, default=10, help="Stored recommendations per customer.")
    parser.add_argument("--n-items", type=int, default=5, help="Items per e-mail.")
    parser.add_argument("--send", type=int, default=5000, help="Customers in the send benchmark.")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "campaigns.json"))
    args = parser.parse_args()

    import django

    if os.environ["DATABASE_URL"].startswith(("postgres://", "postgresql://")):
        ensure_database(os.environ["DATABASE_URL"])
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("bench/campaigns.py needs PostgreSQL: set DATABASE_URL to a private, disposable database.")
    call_command("migrate", verbosity=0)
    results = {
        "benchmark": "campaigns",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "database": "postgresql",
        "params": vars(args),
    }
    results["generate"] = generate(args.customers, args.items, args.recs, args.send)
    print(json.dumps(results["generate"]), flush=True)
    results["build"] = bench_build(args.n_items)
    results["build"]["target_seconds"] = 60
    results["build"]["within_target"] = results["build"]["build_seconds"] <= 60
    print(json.dumps(results["build"]), flush=True)
    results["send"] = bench_send(args.send, args.n_items, args.batch_size)
    print(json.dumps(results["send"]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

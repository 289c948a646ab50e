"""Deliverability benchmark: provider webhook ingestion (events/s, replays/s) and outbound webhook delivery.

Uses a private PostgreSQL database (wiped at the start; DATABASE_URL defaults to .../deliver)::

    python bench/deliverability.py [--events 2000] [--outbound 500]

Ingestion posts Postmark-shaped events (70% delivered, 20% opened, 5% hard bounces, 5% complaints)
through Django's test client into the real webhook view (basic auth, anymail parsing, the tracking
signal, idempotency, suppression), then posts every one again (replays). Outbound delivers signed
events (queue row + signed POST + log row, first attempt inline as without a broker) to an HTTP
receiver on 127.0.0.1. Writes bench/results/deliverability.json.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from drill_common import ensure_database  # noqa: E402  (bench/ helpers)

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/deliver")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
os.environ.setdefault("ANYMAIL_WEBHOOK_SECRET", "bench:bench-webhook-secret")
os.environ.setdefault("LOG_LEVEL", "WARNING")
SECRET = os.environ["ANYMAIL_WEBHOOK_SECRET"]


def setup(n: int) -> list[tuple[str, str]]:
    """n sent recipients, each with a Postmark message id; returns (message id, email) pairs."""
    from django.core.management import call_command

    from campaigns.models import Campaign, Recipient, RecipientDelivery
    from crm.models import Customer

    call_command("flush", "--noinput", verbosity=0)
    Customer.objects.bulk_create([
        Customer(external_id=f"b-{i}", email=f"b{i}@example.com", email_opt_in=True) for i in range(n)])
    campaign = Campaign.objects.create(name="bench", status=Campaign.Status.SENT, current_run=1)
    customers = list(Customer.objects.order_by("pk"))
    Recipient.objects.bulk_create([
        Recipient(campaign=campaign, customer=c, email=c.email, state=Recipient.State.SENT, items=[])
        for c in customers])
    recipients = list(Recipient.objects.filter(campaign=campaign).order_by("pk"))
    RecipientDelivery.objects.bulk_create([
        RecipientDelivery(recipient=r, esp="postmark", provider_message_id=f"pm-{r.pk:08d}") for r in recipients])
    return [(f"pm-{r.pk:08d}", r.email) for r in recipients]


def payload(i: int, message_id: str, email: str) -> dict:
    share = i % 20
    if share < 14:
        return {"RecordType": "Delivery", "MessageID": message_id, "Recipient": email,
                "DeliveredAt": "2026-11-30T10:00:00Z", "Details": "250 OK", "Metadata": {}}
    if share < 18:
        return {"RecordType": "Open", "MessageID": message_id, "Recipient": email, "FirstOpen": True,
                "ReceivedAt": "2026-11-30T10:05:00Z", "UserAgent": "Mozilla/5.0 (Windows NT 10.0) Firefox/133.0"}
    if share == 18:
        return {"RecordType": "Bounce", "ID": i, "Type": "HardBounce", "MessageID": message_id, "Email": email,
                "BouncedAt": "2026-11-30T10:00:00Z", "Details": "smtp;550 5.1.1 unknown"}
    return {"RecordType": "SpamComplaint", "ID": i, "Type": "SpamComplaint", "MessageID": message_id,
            "Email": email, "BouncedAt": "2026-11-30T10:00:00Z"}


def ingest(pairs: list[tuple[str, str]]) -> dict:
    from django.test import Client

    client = Client()
    auth = "Basic " + base64.b64encode(SECRET.encode()).decode()
    bodies = [json.dumps(payload(i, m, e)) for i, (m, e) in enumerate(pairs)]
    result = {}
    for label in ("first", "replay"):
        started, codes = time.perf_counter(), {}
        for body in bodies:
            code = client.post("/webhooks/esp/postmark/tracking/", body, content_type="application/json",
                               HTTP_AUTHORIZATION=auth).status_code
            codes[code] = codes.get(code, 0) + 1
        seconds = time.perf_counter() - started
        result[label] = {"events": len(bodies), "seconds": round(seconds, 2),
                         "events_per_second": round(len(bodies) / seconds, 1), "status_codes": codes}
    from campaigns.models import DeliveryEvent, Suppression

    result["stored_events"] = DeliveryEvent.objects.count()
    result["suppressed"] = Suppression.objects.count()
    return result


def outbound(n: int) -> dict:
    from campaigns.models import WebhookDelivery
    from campaigns.services.webhooks_out import webhook_event_emit, webhook_subscription_create

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    webhook_subscription_create(name="bench", url=f"http://127.0.0.1:{server.server_address[1]}/",
                                secret="bench-secret-0123456789", event_types=["campaign.sent"])
    # Without a broker the first attempt runs inline when the event is queued (as in eager mode).
    started = time.perf_counter()
    for i in range(n):
        webhook_event_emit(event_type="campaign.sent", dedupe_key=f"bench:{i}", data={"i": i})
    seconds = time.perf_counter() - started
    server.shutdown()
    delivered = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DELIVERED).count()
    return {"events": n, "seconds": round(seconds, 2), "events_per_second": round(n / seconds, 1),
            "delivered_first_attempt": delivered}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--outbound", type=int, default=500)
    args = parser.parse_args()
    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    pairs = setup(args.events)
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "database": "postgresql",
        "ingest": ingest(pairs),
        "outbound": outbound(args.outbound),
    }
    out = ROOT / "bench" / "results" / "deliverability.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

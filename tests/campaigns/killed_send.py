"""A send killed mid-message, as the kill tests stage it: ``manage.py campaign send`` in its own
process against a file SQLite database and a real SMTP server (:class:`SmtpSink`) whose DATA handler
stalls on the third message; the process is SIGKILLed while that message is in flight."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Six opted-in customers with three recommendations each and a campaign built for them; prints its pk.
SETUP = """
from campaigns.models import Campaign
from campaigns.services.build import campaign_build
from crm.models import Customer, Item
from recommendations.models import ModelVersion, Recommendation
v = ModelVersion.objects.create(algorithm="t", status="ready", is_active=True)
items = [Item.objects.create(sku=f"S{i}", title=f"Item {i}", price=10, url=f"https://shop.example/{i}")
         for i in range(3)]
for n in range(6):
    c = Customer.objects.create(external_id=f"c{n}", email=f"c{n}@example.com", first_name=f"N{n}",
                                email_opt_in=True)
    for rank, item in enumerate(items, start=1):
        Recommendation.objects.create(model_version=v, customer=c, rank=rank, item=item, score=1 / rank)
campaign = Campaign.objects.create(name="kill test", n_items=2, holdout_share=0)
campaign_build(campaign=campaign)
print(campaign.pk)
"""


def manage(env: dict, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True, timeout=timeout)


def last_json(output: str):
    return json.loads(output.strip().splitlines()[-1])


def send_env(tmp_path: Path, sink, claim_size: int) -> dict:
    """The sender's environment: a fresh SQLite file, the sink as SMTP server, no broker."""
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings", "TAILORED_ENV": "development",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'kill.sqlite3'}", "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
            "CELERY_BROKER_URL": "", "LOG_LEVEL": "WARNING", "CAMPAIGNS_SEND_CLAIM_SIZE": str(claim_size)}


def campaign_ready(env: dict) -> str:
    """Migrate the database and build the six-recipient campaign; returns its id."""
    manage(env, "migrate", "-v", "0")
    return manage(env, "shell", "-c", SETUP).stdout.strip().splitlines()[-1]


def kill_send_at_third_message(env: dict, campaign_id: str, sink) -> None:
    """Start the send, SIGKILL it while the sink holds message 3, then let the sink answer at once."""
    sink.handler.data_delay, sink.handler.delay_from = 3.0, 3
    sender = subprocess.Popen([sys.executable, "manage.py", "campaign", "send", campaign_id], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert sink.handler.in_data.wait(60), "the send never reached the third message"
    os.kill(sender.pid, signal.SIGKILL)
    sender.wait(10)
    sink.handler.data_delay = 0

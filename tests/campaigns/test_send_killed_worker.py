"""A worker SIGKILLed mid-send, then the send re-run: nobody receives a message twice.

The send runs in a separate process (``manage.py campaign send``) against a file SQLite database
and a real SMTP server whose DATA handler stalls on the third message; the test kills the process
while that message is in flight. The server still delivers it (it had the whole message), but the
worker never saw the reply: that recipient stays ``sending`` and is reported in doubt. The re-run
sends everyone else, and never that one.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.campaigns.smtp_sink import SmtpSink

ROOT = Path(__file__).resolve().parents[2]

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

STATES = """
import json
from campaigns.models import Recipient
print(json.dumps(dict(Recipient.objects.values_list("email", "state"))))
"""


def _manage(env, *args, check=True, **kwargs):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=check,
                          capture_output=True, text=True, timeout=120, **kwargs)


def _last_json(output: str):
    return json.loads(output.strip().splitlines()[-1])


@pytest.mark.timeout(240)
def test_killed_worker_then_rerun_sends_each_recipient_at_most_once(tmp_path):
    with SmtpSink() as sink:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "crm.settings",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'kill.sqlite3'}",
            "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
            "CELERY_BROKER_URL": "",
            "LOG_LEVEL": "WARNING",
            "TAILORED_ENV": "development",
            "CAMPAIGNS_SEND_CLAIM_SIZE": "1",  # one claim per message; batch claims: test_send_batches.py
        }
        _manage(env, "migrate", "-v", "0")
        campaign_id = _manage(env, "shell", "-c", SETUP).stdout.strip().splitlines()[-1]
        sink.handler.data_delay, sink.handler.delay_from = 3.0, 3
        # when: the worker dies while the third message is in flight
        worker = subprocess.Popen([sys.executable, "manage.py", "campaign", "send", campaign_id], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert sink.handler.in_data.wait(60), "the send never reached the third message"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        sink.handler.data_delay = 0
        # and the send is run again
        rerun = _manage(env, "campaign", "send", campaign_id)
        # then
        report = json.loads(rerun.stdout)
        assert (report["sent"], report["in_doubt"], report["pending"]) == (5, 1, 0)
        assert "in doubt" in rerun.stderr
        counts = sink.handler.count_by_recipient()
        assert set(counts.values()) == {1}, counts  # nobody twice
        states = _last_json(_manage(env, "shell", "-c", STATES).stdout)
        in_doubt = [email for email, state in states.items() if state == "sending"]
        assert len(in_doubt) == 1 and counts[in_doubt[0]] == 1  # delivered once, reported in doubt
        assert all(counts[email] == 1 for email, state in states.items() if state == "sent")
        results = json.loads(_manage(env, "campaign", "results", campaign_id, "--json").stdout)
        assert (results["sent"], results["in_doubt"]) == (5, 1)

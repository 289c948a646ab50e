"""A worker SIGKILLed mid-send, then the send re-run: nobody receives a message twice.

The send runs in a separate process (``manage.py campaign send``) against a file SQLite database
and a real SMTP server whose DATA handler stalls on the third message; the test kills the process
while that message is in flight. The server still delivers it (it had the whole message), but the
worker never saw the reply: that recipient stays ``sending`` and is reported in doubt. The re-run
sends everyone else, and never that one.
"""
from __future__ import annotations

import json

import pytest

from tests.campaigns.killed_send import campaign_ready, kill_send_at_third_message, last_json, manage, send_env
from tests.campaigns.smtp_sink import SmtpSink

STATES = """
import json
from campaigns.models import Recipient
print(json.dumps(dict(Recipient.objects.values_list("email", "state"))))
"""


@pytest.mark.timeout(240)
def test_killed_worker_then_rerun_sends_each_recipient_at_most_once(tmp_path):
    with SmtpSink() as sink:
        env = send_env(tmp_path, sink, claim_size=1)  # one claim per message; batch claims: test_send_batches.py
        campaign_id = campaign_ready(env)
        # when: the worker dies while the third message is in flight
        kill_send_at_third_message(env, campaign_id, sink)
        # and the send is run again
        rerun = manage(env, "campaign", "send", campaign_id)
        # then
        report = json.loads(rerun.stdout)
        assert (report["sent"], report["in_doubt"], report["pending"]) == (5, 1, 0)
        assert "in doubt" in rerun.stderr
        counts = sink.handler.count_by_recipient()
        assert set(counts.values()) == {1}, counts  # nobody twice
        states = last_json(manage(env, "shell", "-c", STATES).stdout)
        in_doubt = [email for email, state in states.items() if state == "sending"]
        assert len(in_doubt) == 1 and counts[in_doubt[0]] == 1  # delivered once, reported in doubt
        assert all(counts[email] == 1 for email, state in states.items() if state == "sent")
        results = json.loads(manage(env, "campaign", "results", campaign_id, "--json").stdout)
        assert (results["sent"], results["in_doubt"]) == (5, 1)

"""Drill: ``manage.py campaign send`` SIGKILLed at a random moment, then run again, 100 times.

Each trial is its own built campaign of ``--recipients`` customers. The send runs as a separate
process against a private PostgreSQL cluster and a real SMTP server (aiosmtpd, its own process,
which records each message before it replies, after ``--smtp-delay`` seconds: a worker killed while
waiting for that reply has still delivered the message). The drill kills the send with SIGKILL at
a random moment: an offset drawn uniformly from [-0.3, 1.05] x the calibrated sending span (first to
last message of an uninterrupted send), counted
from the trial's first message at the sink (negative: that long before the calibrated first
message, i.e. during start-up or the claim), then runs
``campaign send`` again to completion, and finally compares every recipient's state with what the
SMTP server received.

Pass criteria: no customer has two messages of one campaign (``double_sends == 0``), and every
customer without a message is visibly "in doubt" (state ``sending``, counted by the re-run's report
and by ``campaign results``) rather than lost (``lost_silently == 0``). Writes
bench/results/drill_send_kill.json.

    python bench/drill_send_kill.py [--trials 100] [--recipients 30] [--seed 1]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from drill_common import (  # bench/ helpers (this script's folder is on sys.path)
    PYTHON,
    ROOT,
    PrivatePostgres,
    SmtpSinkProcess,
    django_env,
    manage,
    run_django,
    write_result,
)

SETUP = """
import json
from campaigns.models import Campaign
from campaigns.services.build import campaign_build
from crm.models import Customer, Item
from recommendations.models import ModelVersion, Recommendation

n_campaigns, n_customers = {n_campaigns}, {n_customers}
version = ModelVersion.objects.create(algorithm="drill", status="ready", is_active=True)
items = [Item.objects.create(sku=f"S{{i}}", title=f"Item {{i}}", price=10, url=f"https://shop.example/{{i}}")
         for i in range(4)]
customers = Customer.objects.bulk_create(
    Customer(external_id=f"c{{n}}", email=f"c{{n}}@example.com", first_name=f"N{{n}}", email_opt_in=True)
    for n in range(n_customers)
)
Recommendation.objects.bulk_create(
    Recommendation(model_version=version, customer=c, rank=rank, item=item, score=1 / rank)
    for c in customers for rank, item in enumerate(items, start=1)
)
ids = []
for n in range(n_campaigns):
    campaign = Campaign.objects.create(name=f"kill drill {{n}}", n_items=2, holdout_share=0, frequency_cap_count=0)
    campaign_build(campaign=campaign)
    ids.append(campaign.pk)
print(json.dumps(ids))
"""

STATES = """
import json
from campaigns.models import Recipient
rows = Recipient.objects.filter(campaign_id__in={ids}).values_list("campaign_id", "pk", "email", "state")
print(json.dumps([list(r) for r in rows]))
"""

MESSAGE_ID = re.compile(r"<c(\d+)\.r\d+\.(\d+)\.")


def _send(env: dict[str, str], campaign_id: int) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, str(ROOT / "manage.py"), "campaign", "send", str(campaign_id)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _calibrate(env: dict[str, str], sink: SmtpSinkProcess, campaign_id: int) -> dict[str, float]:
    """One uninterrupted send: when the first message arrives and when the process ends (seconds)."""
    before = len(sink.messages())
    started = time.time()
    process = _send(env, campaign_id)
    process.communicate(timeout=300)
    ended = time.time()
    arrivals = [m["at"] for m in sink.messages()[before:]]
    return {"first_message_s": round(min(arrivals) - started, 3), "last_message_s": round(max(arrivals) - started, 3),
            "process_s": round(ended - started, 3), "messages": len(arrivals)}


def _messages_of(sink: SmtpSinkProcess, campaign_id: int) -> int:
    """Messages of one campaign at the sink (trials in other lanes send at the same time)."""
    return sum(1 for m in sink.messages() if (match := MESSAGE_ID.search(m["message_id"]))
               and int(match.group(1)) == campaign_id)


def _wait_first_message(sink: SmtpSinkProcess, campaign_id: int, process: subprocess.Popen,
                        timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not _messages_of(sink, campaign_id) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


def _trial(env: dict[str, str], sink: SmtpSinkProcess, campaign_id: int, rng: random.Random,
           calibration: dict[str, float]) -> dict:
    """Send, SIGKILL at a random moment, send again to completion."""
    span = calibration["last_message_s"] - calibration["first_message_s"]
    offset = rng.uniform(-0.3 * span, 1.05 * span)
    launched = time.monotonic()
    process = _send(env, campaign_id)
    if offset < 0:  # before the first message, by the calibrated start-up time
        time.sleep(max(0.0, calibration["first_message_s"] + offset))
    else:  # ``offset`` seconds after this trial's first message reached the sink
        _wait_first_message(sink, campaign_id, process)
        time.sleep(offset)
    delay = time.monotonic() - launched
    exited_first = process.poll() is not None
    if not exited_first:
        os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    at_kill = _messages_of(sink, campaign_id)
    rerun = manage(env, "campaign", "send", str(campaign_id), timeout=300)
    report = json.loads(rerun.stdout.strip().splitlines()[-1])
    return {"campaign": campaign_id, "kill_after_s": round(delay, 3), "exited_before_kill": exited_first,
            "offset_from_first_message_s": round(offset, 3), "messages_before_rerun": at_kill,
            "rerun_report": report, "warned_in_doubt": "in doubt" in rerun.stderr}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--recipients", type=int, default=30, help="customers per trial campaign")
    parser.add_argument("--smtp-delay", type=float, default=0.03, help="seconds the sink holds each DATA reply")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lanes", type=int, default=2, help="trials run side by side (other campaigns)")
    parser.add_argument("--max-minutes", type=float, default=45, help="stop starting trials after this long")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tailored-drill-send-") as tmp, PrivatePostgres() as pg, \
            SmtpSinkProcess(Path(tmp), delay=args.smtp_delay) as sink:
        env = django_env(pg.create_database("drill"), EMAIL_URL=f"smtp://127.0.0.1:{sink.port}")
        manage(env, "migrate", "--noinput", "-v", "0")
        ids = json.loads(run_django(env, SETUP.format(n_campaigns=args.trials + 1,
                                                      n_customers=args.recipients)).splitlines()[-1])
        calibration = _calibrate(env, sink, ids.pop())
        span = calibration["last_message_s"] - calibration["first_message_s"]
        deadline = started + args.max_minutes * 60

        def lane(campaign_ids: list[int]) -> list[dict]:
            done = []
            for campaign_id in campaign_ids:
                if time.monotonic() > deadline:
                    break
                done.append(_trial(env, sink, campaign_id, random.Random(args.seed * 100_003 + campaign_id),
                                   calibration))
            return done

        with ThreadPoolExecutor(args.lanes) as pool:
            trials = [t for done in pool.map(lane, [ids[n::args.lanes] for n in range(args.lanes)]) for t in done]
        reruns = {t["campaign"]: {"report": t.pop("rerun_report"), "warned_in_doubt": t.pop("warned_in_doubt")}
                  for t in trials}
        states = json.loads(run_django(env, STATES.format(ids=[t["campaign"] for t in trials])).splitlines()[-1])
        messages = sink.messages()

    # What the sink received, per campaign and recipient address, and per recipient row.
    received = Counter()
    by_row = Counter()
    for message in messages:
        match = MESSAGE_ID.search(message["message_id"])
        if match:
            by_row[int(match.group(2))] += 1
            received[(int(match.group(1)), message["to"])] += 1
    rows_by_campaign = defaultdict(list)
    for campaign_id, pk, email, state in states:
        rows_by_campaign[campaign_id].append((pk, email, state))
    double = [{"campaign": c, "to": to, "messages": n} for (c, to), n in received.items() if n > 1]
    lost, sent_without_message, in_doubt, in_doubt_delivered, report_mismatch, not_warned = [], [], 0, 0, [], []
    for trial in trials:
        c = trial["campaign"]
        rows = rows_by_campaign[c]
        doubt_here = [pk for pk, _, state in rows if state == "sending"]
        in_doubt += len(doubt_here)
        in_doubt_delivered += sum(1 for pk in doubt_here if by_row[pk])
        for pk, email, state in rows:
            if received[(c, email)] == 0 and state not in ("sending", "skipped", "failed"):
                lost.append({"campaign": c, "recipient": pk, "state": state})
            if state == "sent" and received[(c, email)] == 0:
                sent_without_message.append({"campaign": c, "recipient": pk})
        report = reruns[c]["report"]
        if report["in_doubt"] != len(doubt_here) or report["pending"] != 0:
            report_mismatch.append({"campaign": c, "report": report, "in_doubt_rows": len(doubt_here)})
        if doubt_here and not reruns[c]["warned_in_doubt"]:
            not_warned.append(c)
        trial["in_doubt"] = len(doubt_here)
    total_rows = sum(len(rows_by_campaign[t["campaign"]]) for t in trials)
    kills = [t for t in trials if not t["exited_before_kill"]]
    result = {
        "drill": "send_kill",
        "database": "postgresql (private cluster)",
        "trials": len(trials),
        "recipients_per_trial": args.recipients,
        "recipients_total": total_rows,
        "messages_at_sink": len(messages) - calibration["messages"],
        "double_sends": len(double),
        "lost_silently": len(lost),
        "in_doubt": in_doubt,
        "in_doubt_delivered": in_doubt_delivered,
        "in_doubt_not_delivered": in_doubt - in_doubt_delivered,
        "sent_state_without_message": len(sent_without_message),
        "rerun_report_mismatches": len(report_mismatch),
        "in_doubt_without_warning": len(not_warned),
        "kills": {
            "sigkilled": len(kills),
            "process_had_exited": len(trials) - len(kills),
            "before_first_message": sum(1 for t in kills if t["messages_before_rerun"] == 0),
            "mid_send": sum(1 for t in kills if 0 < t["messages_before_rerun"] < args.recipients),
            "after_last_message": sum(1 for t in kills if t["messages_before_rerun"] >= args.recipients),
        },
        "kill_offset_window_s": [round(-0.3 * span, 3), round(1.05 * span, 3)],
        "calibration": calibration,
        "smtp_delay_s": args.smtp_delay,
        "seed": args.seed,
        "lanes": args.lanes,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "seconds": round(time.monotonic() - started, 1),
        "passed": not double and not lost and not sent_without_message and not report_mismatch and not not_warned,
        "examples": {"double": double[:5], "lost": lost[:5], "report_mismatch": report_mismatch[:5]},
    }
    write_result("drill_send_kill", result)
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()

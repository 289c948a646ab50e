"""Drill: PostgreSQL restarted while 4 clients post bulk events; every event id stored exactly once.

Starts a private PostgreSQL cluster (``initdb`` into a temporary directory, a free port; the shared
server is never touched), migrates it, and serves the product with gunicorn on 127.0.0.1. Four
client threads post ``POST /api/v1/interactions/bulk`` batches of unique event ids; on any error
(connection refused or reset, a 5xx, a 429) a client waits and posts the SAME batch again, as an
integration following docs/api.md would (``event_id`` makes a replay harmless). Meanwhile the
cluster is restarted ``--restarts`` times (``pg_ctl restart -m fast``: every connection is cut),
each when the clients have finished another share of their batches.

Pass criteria: every event id posted is in ``crm_interaction`` exactly once (``missing == 0``,
``duplicated == 0``, no stray rows) and no batch was given up. Writes
bench/results/drill_pg_restart.json with the status of every response the clients saw.

    python bench/drill_pg_restart.py [--batches 40] [--batch-size 250] [--restarts 3]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from drill_common import Gunicorn, PrivatePostgres, django_env, manage, write_result  # bench/ helpers

CLIENTS = 4
N_CUSTOMERS, N_ITEMS = 500, 200
MAX_ATTEMPTS = 60
RETRY_WAIT_S = 0.25
BATCH_DEADLINE_S = 180


class Client:
    def __init__(self, base: str, key: str):
        self.base, self.key = base, key
        self.statuses: Counter = Counter()
        self.error_shapes: Counter = Counter()
        self.retries = 0
        self.gave_up: list[str] = []
        self.created = 0
        self.duplicates_on_retry = 0
        self.lock = threading.Lock()

    def post(self, path: str, body: dict) -> tuple[int, dict | None, str]:
        request = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method="POST", headers={
            "Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read()), ""
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw), ""
            except ValueError:
                return exc.code, None, raw[:200].decode(errors="replace")
        except (OSError, ValueError) as exc:  # refused, reset, timed out, a truncated body
            return 0, None, type(exc).__name__

    def post_until_stored(self, path: str, body: dict, label: str) -> dict | None:
        """Post ``body`` until a 200 (bounded in attempts and time); None when it gave up."""
        deadline = time.monotonic() + BATCH_DEADLINE_S
        for attempt in range(MAX_ATTEMPTS):
            status, data, error = self.post(path, body)
            with self.lock:
                self.statuses[str(status) if status else f"no response ({error})"] += 1
                if status >= 400:
                    shape = "api error shape" if isinstance(data, dict) and {"error", "detail"} <= set(data) else \
                        "other"
                    self.error_shapes[f"{status} {shape}"] += 1
            if status == 200:
                with self.lock:
                    self.created += data.get("created", 0)
                    if attempt:
                        self.retries += attempt
                        self.duplicates_on_retry += data.get("duplicates", 0)
                return data
            if 400 <= status < 500 and status != 429:
                break  # the batch itself is wrong: retrying cannot help
            if time.monotonic() > deadline:
                break
            time.sleep(RETRY_WAIT_S)
        with self.lock:
            self.gave_up.append(label)
        return None


def _batch(client_no: int, batch_no: int, size: int) -> dict:
    events = []
    for n in range(size):
        i = (client_no * 1_000_003 + batch_no * size + n)
        events.append({"event_id": f"drill-{client_no}-{batch_no}-{n}", "customer": f"c{i % N_CUSTOMERS}",
                       "item": f"s{(i * 7) % N_ITEMS}", "kind": "view" if n % 4 else "purchase",
                       "occurred_at": f"2024-05-{1 + n % 28:02d}T10:{n % 60:02d}:00Z"})
    return {"events": events}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=40, help="batches per client")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    args = parser.parse_args()
    started = time.monotonic()
    total_batches = CLIENTS * args.batches
    done = Counter()
    restarts: list[dict] = []
    with PrivatePostgres() as pg:
        url = pg.create_database("drill")
        env = django_env(url, DEBUG="false", API_THROTTLE_RATE_BULK="1000000/hour",
                         API_THROTTLE_RATE="1000000/hour")
        manage(env, "migrate", "--noinput", "-v", "0")
        key = manage(env, "create_api_key", "--name", "drill", "--scopes", "read,write").stdout.strip()
        with Gunicorn(env, workers=args.workers, error_log=pg.dir / "gunicorn.log") as server:
            client = Client(server.base, key)
            client.post_until_stored("/api/v1/customers/bulk", {"customers": [
                {"external_id": f"c{i}", "country": "DE"} for i in range(N_CUSTOMERS)]}, "customers")
            client.post_until_stored("/api/v1/items/bulk", {"items": [
                {"sku": f"s{i}", "title": f"Item {i}", "price": "9.50"} for i in range(N_ITEMS)]}, "items")
            client.statuses.clear()
            client.created = 0
            stop = threading.Event()

            def restarter() -> None:
                for n in range(1, args.restarts + 1):
                    threshold = total_batches * n / (args.restarts + 1)
                    while done["batches"] < threshold and not stop.is_set():
                        time.sleep(0.02)
                    if stop.is_set():
                        return
                    at = time.monotonic() - started
                    try:
                        seconds = pg.restart()
                        restarts.append({"at_s": round(at, 2), "batches_done": done["batches"],
                                         "restart_s": round(seconds, 2)})
                    except subprocess.CalledProcessError as exc:
                        restarts.append({"at_s": round(at, 2), "error": (exc.stderr or b"")[-300:].decode()})

            def run_client(client_no: int) -> None:
                for batch_no in range(args.batches):
                    client.post_until_stored("/api/v1/interactions/bulk", _batch(client_no, batch_no, args.batch_size),
                                             f"{client_no}-{batch_no}")
                    with client.lock:
                        done["batches"] += 1

            restart_thread = threading.Thread(target=restarter, daemon=True)
            restart_thread.start()
            load_started = time.monotonic()
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(run_client, range(CLIENTS)))
            load_seconds = time.monotonic() - load_started
            stop.set()
            restart_thread.join(timeout=120)
            server_exceptions = server.logged_exceptions()

        import psycopg

        with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
            stored = Counter(eid for (eid,) in conn.execute(
                "SELECT event_id FROM crm_interaction WHERE event_id LIKE 'drill-%%'"))
            total_rows = conn.execute("SELECT count(*) FROM crm_interaction").fetchone()[0]
    posted = {f"drill-{c}-{b}-{n}" for c in range(CLIENTS) for b in range(args.batches) for n in range(args.batch_size)}
    missing = posted - set(stored)
    duplicated = {eid: n for eid, n in stored.items() if n > 1}
    unexpected = set(stored) - posted
    result = {
        "drill": "pg_restart",
        "database": "postgresql (private cluster, restarted with pg_ctl restart -m fast)",
        "clients": CLIENTS,
        "batches_per_client": args.batches,
        "batch_size": args.batch_size,
        "events_posted": len(posted),
        "events_stored": sum(stored.values()),
        "missing": len(missing),
        "duplicated": len(duplicated),
        "unexpected_rows": len(unexpected) + (total_rows - sum(stored.values())),
        "batches_given_up": len(client.gave_up),
        "restarts": restarts,
        "restarts_done": sum(1 for r in restarts if "error" not in r),
        "responses_by_status": dict(sorted(client.statuses.items())),
        "error_responses_by_shape": dict(sorted(client.error_shapes.items())),
        "server_exceptions_logged": dict(server_exceptions),
        "batch_retries": client.retries,
        "created_reported": client.created,
        "duplicates_reported_on_retries": client.duplicates_on_retry,
        "gunicorn_workers": args.workers,
        "load_seconds": round(load_seconds, 1),
        "seconds": round(time.monotonic() - started, 1),
        "examples": {"missing": sorted(missing)[:5], "duplicated": dict(list(duplicated.items())[:5]),
                     "gave_up": client.gave_up[:5]},
    }
    result["passed"] = (not missing and not duplicated and not result["unexpected_rows"] and not client.gave_up
                        and result["restarts_done"] == args.restarts)
    write_result("drill_pg_restart", result)
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()

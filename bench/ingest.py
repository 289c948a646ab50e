"""Ingest benchmark: events/s through POST /api/v1/interactions/bulk into PostgreSQL, and the
latency of GET /api/v1/customers/{id}/recommendations.

Creates a private database, migrates it, starts gunicorn on 127.0.0.1, pushes 1,000-event batches
from one client and from four concurrent clients, then drops the database. Writes
bench/results/ingest.json.

    python bench/ingest.py [--events 200000] [--workers 2] [--pg postgres://postgres@127.0.0.1:5432]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = "tailored_ingest_bench"
PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"


def _post(path: str, body: dict, key: str) -> dict:
    request = urllib.request.Request(
        BASE + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def _get(path: str, key: str) -> float:
    started = time.perf_counter()
    request = urllib.request.Request(BASE + path, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
    return time.perf_counter() - started


def _batches(prefix: str, n_events: int, n_customers: int, n_items: int, size: int = 1000):
    batch = []
    for i in range(n_events):
        batch.append({"event_id": f"{prefix}-{i}", "customer": f"c{i * 7919 % n_customers}",
                      "item": f"s{i * 104729 % n_items}", "kind": "view" if i % 5 else "purchase",
                      "occurred_at": f"2024-05-{1 + i % 28:02d}T10:{i % 60:02d}:00Z"})
        if len(batch) == size:
            yield {"events": batch}
            batch = []
    if batch:
        yield {"events": batch}


def _ingest(prefix: str, n_events: int, clients: int, key: str, n_customers: int, n_items: int) -> dict:
    batches = list(_batches(prefix, n_events, n_customers, n_items))
    latencies: list[float] = []

    def send(body):
        started = time.perf_counter()
        result = _post("/api/v1/interactions/bulk", body, key)
        latencies.append(time.perf_counter() - started)
        return result["created"]

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        created = sum(pool.map(send, batches))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"clients": clients, "events": n_events, "created": created, "seconds": round(elapsed, 2),
            "events_per_second": round(n_events / elapsed),
            "batch_p50_ms": round(1000 * latencies[len(latencies) // 2]),
            "batch_p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1])}


def _configure(db: str, port: int) -> None:
    global DB, PORT, BASE
    DB, PORT, BASE = db, port, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000, help="events per scenario")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default=DB, help="database to create (and drop) for the run")
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args()
    _configure(args.db, args.port)
    env = {**os.environ, "DATABASE_URL": f"{args.pg}/{DB}", "DEBUG": "false", "LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "crm.settings"}
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB], check=True)
    server = None
    try:
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)
        key = subprocess.run([*manage, "create_api_key", "--name", "bench", "--scopes", "admin"], env=env,
                             check=True, cwd=ROOT, capture_output=True, text=True).stdout.strip()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "crm.wsgi", "-b", f"127.0.0.1:{PORT}", "-w", str(args.workers),
             "--timeout", "120", "--log-level", "warning"], env=env, cwd=ROOT)
        for _ in range(100):
            try:
                _get("/api/v1/model-versions", key)
                break
            except OSError:
                time.sleep(0.2)
        n_customers, n_items = 5000, 1000
        for start in range(0, n_customers, 1000):
            _post("/api/v1/customers/bulk", {"customers": [{"external_id": f"c{i}", "country": "DE"}
                                                           for i in range(start, start + 1000)]}, key)
        _post("/api/v1/items/bulk", {"items": [{"sku": f"s{i}", "title": f"Item {i}", "category": f"cat{i % 10}",
                                                "price": str(5 + i % 100)} for i in range(n_items)]}, key)
        _ingest("warm", 5000, 1, key, n_customers, n_items)
        one = _ingest("one", args.events, 1, key, n_customers, n_items)
        four = _ingest("four", args.events, 4, key, n_customers, n_items)
        replay = _ingest("one", 20_000, 4, key, n_customers, n_items)  # already stored: all duplicates
        latencies = sorted(_get(f"/api/v1/customers/c{i % n_customers}/recommendations?limit=10", key)
                           for i in range(300))
        results = {
            "database": "postgresql", "gunicorn_workers": args.workers, "cpus": os.cpu_count(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),  # other work on the machine skews results
            "batch_size": 1000, "one_client": one, "four_clients": four, "replay_four_clients": replay,
            "recommendations_get": {"requests": len(latencies),
                                    "p50_ms": round(1000 * statistics.median(latencies), 1),
                                    "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1], 1)},
        }
        out = ROOT / "bench" / "results" / "ingest.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB], check=True)


if __name__ == "__main__":
    main()

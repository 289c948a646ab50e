"""API under load: 32 concurrent locust users against gunicorn + PostgreSQL, three endpoints in one run.

Run:  python bench/api_load.py [--users 32] [--seconds 60] [--workers 4] [--customers 20000] [--items 10000]

Builds a private database (``scale_api_bench``): customers and items by set-based SQL, a sequential
model over the 10,000-item catalogue (one epoch on synthetic walks: quality is not the point, its
size and code path are), every customer's stored top-50 written through the batch scorer and COPY,
the version attached and activated. Then gunicorn serves it and locust (headless) runs ``--users``
users that each call, equally often: ``GET customers/{id}/recommendations`` (stored list),
``POST recommendations/session`` (5 recent SKUs -> top-10 computed in the request) and
``GET items/{sku}`` (the trivial DRF endpoint: one indexed row, the reference). p50/p99 of each go
to ``bench/results/api_load.json``, with the same three measured from a single client afterwards
(no queueing: what one request costs).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DB = "scale_api_bench"
PORT = 8791
PG = "postgres://postgres@127.0.0.1:5432"


def prepare(n_customers: int, n_items: int, artifacts: Path) -> str:
    """Data, model, stored lists, active version; returns a read-scope API key."""
    import django

    django.setup()
    import torch
    from django.db import connection

    from crm.services import api_key_create
    from recommendations.engine.batch_scoring import PackedHistories, SequentialScorer, score_batches
    from recommendations.engine.data import build_dataset
    from recommendations.engine.models import make_recommender
    from recommendations.models import ModelVersion
    from recommendations.services.bulk_write import RecommendationBlock, RecommendationWriter
    from recommendations.services.partitions import version_storage_attach
    from recommendations.services.registry import model_version_activate

    torch.set_num_threads(2)
    with connection.cursor() as cur:
        cur.execute("""INSERT INTO crm_customer (external_id, email, first_name, last_name, country, attributes,
                           email_opt_in, created_at, updated_at)
                       SELECT 'c' || g, 'c' || g || '@example.com', '', '', 'DE', '{}'::jsonb, true, now(), now()
                       FROM generate_series(1, %s) g""", [n_customers])
        cur.execute("""INSERT INTO crm_item (sku, title, description, category, tags, price, currency, url,
                           image_url, active, in_stock, attributes, created_at, updated_at)
                       SELECT 'SKU' || g, 'Product ' || g, '', 'cat' || (g %% 20), '[]'::jsonb, 5, 'EUR', '', '',
                              true, g %% 50 <> 0, '{}'::jsonb, now(), now()
                       FROM generate_series(1, %s) g""", [n_items])
        cur.execute("SELECT id FROM crm_customer ORDER BY id")
        customer_ids = np.array([r[0] for r in cur.fetchall()], np.int64)
        cur.execute("SELECT id FROM crm_item ORDER BY id")
        item_ids = np.array([r[0] for r in cur.fetchall()], np.int64)
    rng = np.random.default_rng(0)
    events, histories = [], []
    for c in range(n_customers):  # walks through one of 100 item blocks
        start = rng.integers(0, n_items)
        walk = [(start + j) % n_items for j in range(rng.integers(3, 12))]
        histories.append(walk)
        events += [(f"c{c}", str(item_ids[i]), "purchase", float(t), None) for t, i in enumerate(walk)]
    ds, _ = build_dataset(events, item_keys=[str(i) for i in item_ids])
    model = make_recommender("sequential", {"fixed_epochs": 1, "dim": 64, "max_len": 50, "use_text": False,
                                            "device": "cpu", "batch_size": 512})
    model.fit(ds)
    path = artifacts / "bench-session"
    model.save(path)
    version = ModelVersion.objects.create(algorithm="sequential", artifact_path=str(path),
                                          status=ModelVersion.Status.SCORING)
    packed = PackedHistories.from_lists(histories)
    with RecommendationWriter(version.pk, int(customer_ids[0]), int(customer_ids[-1])) as writer:
        for scored in score_batches(SequentialScorer(model), packed, 50, exclude=packed):
            writer.put(RecommendationBlock.from_top_k(
                "discover", customer_ids[scored.rows], item_ids[scored.items], scored.scores,
                probabilities=model.probability(scored.scores), reason_codes=np.zeros(scored.scores.shape, int),
                reasons=["popular with customers like you"]))
    version_storage_attach(version.pk)
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.READY)
    model_version_activate(version=ModelVersion.objects.get(pk=version.pk))
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    _, key = api_key_create(name="bench", scopes=["read"])
    return key


def _single_client(key: str, n_customers: int, n_items: int, n: int = 300) -> dict:
    """p50/p99 of each endpoint with one client (no queueing): the cost of the request itself."""
    import random
    import statistics

    random.seed(1)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    calls = {
        "recommendations GET": lambda: urllib.request.Request(
            f"http://127.0.0.1:{PORT}/api/v1/customers/c{random.randint(1, n_customers)}/recommendations?limit=10",
            headers=headers),
        "session POST": lambda: urllib.request.Request(
            f"http://127.0.0.1:{PORT}/api/v1/recommendations/session", method="POST", headers=headers,
            data=json.dumps({"items": [f"SKU{random.randint(1, n_items)}" for _ in range(5)], "k": 10}).encode()),
        "item detail GET (trivial)": lambda: urllib.request.Request(
            f"http://127.0.0.1:{PORT}/api/v1/items/SKU{random.randint(1, n_items)}", headers=headers),
    }
    out = {}
    for name, make in calls.items():
        times = []
        for _ in range(n):
            started = time.perf_counter()
            urllib.request.urlopen(make(), timeout=60).read()
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        out[name] = {"requests": n, "p50_ms": round(statistics.median(times), 1),
                     "p99_ms": round(times[int(0.99 * (n - 1))], 1)}
    return out


def _configure(db: str, port: int) -> None:
    global DB, PORT
    DB, PORT = db, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--db", default=DB, help="database to create (and drop) for the run")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--cache-url", default="", help="CACHE_URL for the server (e.g. redis://127.0.0.1:6379/4); "
                        "default: per-process locmem, so the list cache is off")
    args = parser.parse_args()
    _configure(args.db, args.port)
    artifacts = Path(tempfile.mkdtemp(prefix="api-load-"))
    env = {**os.environ, "DATABASE_URL": f"{PG}/{DB}", "DEBUG": "false", "LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "crm.settings", "ARTIFACTS_DIR": str(artifacts),
           "API_THROTTLE_RATE": "100000000/hour", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    if args.cache_url:
        env["CACHE_URL"] = args.cache_url
    os.environ.update(env)
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB], check=True)
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)
    key = prepare(args.customers, args.items, artifacts)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "crm.wsgi", "-b", f"127.0.0.1:{PORT}", "-w", str(args.workers),
         "--timeout", "120", "--log-level", "warning"], env=env, cwd=ROOT)
    try:
        for _ in range(300):
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{PORT}/api/v1/items/SKU1",
                                             headers={"Authorization": f"Bearer {key}"})
                urllib.request.urlopen(req, timeout=5).read()
                break
            except OSError:
                time.sleep(0.2)
        # warm every worker (model load, connections) before measuring
        for _ in range(4 * args.workers):
            req = urllib.request.Request(f"http://127.0.0.1:{PORT}/api/v1/recommendations/session",
                                         data=b'{"items": ["SKU1"]}', method="POST",
                                         headers={"Authorization": f"Bearer {key}",
                                                  "Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=60).read()
        prefix = artifacts / "locust"
        subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile_api.py"), "--headless",
             "-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s", "--host",
             f"http://127.0.0.1:{PORT}", "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"],
            env={**env, "BENCH_API_KEY": key, "BENCH_CUSTOMERS": str(args.customers),
                 "BENCH_ITEMS": str(args.items)}, check=False, cwd=ROOT)
        stats = {}
        with open(f"{prefix}_stats.csv") as fh:
            for row in csv.DictReader(fh):
                stats[row["Name"]] = {
                    "requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                    "p50_ms": float(row["50%"]), "p99_ms": float(row["99%"]),
                    "rps": round(float(row["Requests/s"]), 1),
                }
        single = _single_client(key, args.customers, args.items)
    finally:
        server.terminate()
        server.wait(timeout=30)
    trivial = stats.get("item detail GET (trivial)", {}).get("p99_ms")
    get = stats.get("recommendations GET", {}).get("p99_ms")
    result = {
        "users": args.users, "seconds": args.seconds, "gunicorn_workers": args.workers,
        "customers": args.customers, "items": args.items, "model": "sequential (dim 64, max_len 50)",
        "endpoints": stats,
        "single_client": single,
        "recommendations_get_p99_vs_trivial_p99": round(get / trivial, 2) if get and trivial else None,
        "cache_url": args.cache_url or "locmem (list cache off)",
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "api_load.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB], check=False)


if __name__ == "__main__":
    main()

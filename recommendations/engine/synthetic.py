"""Synthetic interaction data with a known right answer.

Why: tests, the demo and the device benchmark must not depend on real data
being present. Items belong to topic clusters and are ordered within a cluster;
each customer belongs to one cluster and consumes its items in order
(i -> i+1, wrapping), with a little noise. So a good model must learn both the
cluster (co-occurrence) and the order (sequence). Each cluster can also have
``n_cold_per_cluster`` catalogue items with text but no events (cold start).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOPICS = [
    ("hiking", "trail hiking boots, waterproof outdoor mountain trekking gear"),
    ("coffee", "espresso coffee beans, dark roast arabica for the morning brew"),
    ("garden", "garden tools, seeds and soil for growing vegetables and flowers"),
    ("baby", "baby care: diapers, bottles and soft toys for newborns"),
    ("gaming", "video game console accessories, controllers and headsets"),
    ("kitchen", "kitchen cookware: frying pans, knives and pots for chefs"),
    ("fitness", "fitness training equipment: dumbbells, yoga mats, resistance bands"),
    ("books", "mystery novels and thriller books, paperback crime fiction"),
    ("pets", "dog food, cat litter and pet grooming supplies"),
    ("audio", "hi-fi audio speakers, amplifiers and vinyl turntables"),
    ("beauty", "skincare cosmetics: moisturiser, serum and sunscreen lotion"),
    ("camping", "camping tents, sleeping bags and portable stoves"),
]


@dataclass
class SyntheticData:
    events: list[tuple[str, str, str, float, float | None]]
    item_keys: list[str]
    item_texts: list[str]
    item_cluster: np.ndarray  # cluster of each item (index aligned with item_keys)
    user_cluster: dict[str, int]
    cold_items: list[str]


def planted_clusters(
    n_users: int = 300,
    n_clusters: int = 6,
    items_per_cluster: int = 20,
    min_len: int = 8,
    max_len: int = 16,
    noise: float = 0.05,
    n_cold_per_cluster: int = 0,
    seed: int = 0,
) -> SyntheticData:
    """Customers walk through their cluster's items in order; see module docstring."""
    rng = np.random.default_rng(seed)
    n_clusters = min(n_clusters, len(TOPICS))
    per = items_per_cluster + n_cold_per_cluster
    item_keys, texts, clusters, cold = [], [], [], []
    for c in range(n_clusters):
        name, desc = TOPICS[c]
        for j in range(per):
            key = f"{name}-{j:03d}"
            item_keys.append(key)
            texts.append(f"{name} product {j}. {desc}")
            clusters.append(c)
            if j >= items_per_cluster:
                cold.append(key)
    kinds = ["view", "click", "add_to_cart", "purchase"]
    events = []
    user_cluster = {}
    for u in range(n_users):
        user = f"u{u:05d}"
        c = int(rng.integers(n_clusters))
        user_cluster[user] = c
        pos = int(rng.integers(items_per_cluster))
        length = int(rng.integers(min_len, max_len + 1))
        t = 1_700_000_000.0 + float(rng.integers(0, 86400 * 30))
        for _ in range(length):
            if rng.random() < noise:
                other = int(rng.integers(n_clusters))
                item = item_keys[other * per + int(rng.integers(items_per_cluster))]
            else:
                item = item_keys[c * per + pos]
                pos = (pos + 1) % items_per_cluster
            t += float(rng.integers(60, 86400))
            events.append((user, item, kinds[int(rng.integers(len(kinds)))], t, None))
    return SyntheticData(events, item_keys, texts, np.asarray(clusters), user_cluster, cold)


def retail_orders(
    n_customers: int = 200,
    n_clusters: int = 4,
    products_per_cluster: int = 30,
    days: int = 180,
    n_staples: tuple[int, int] = (2, 5),
    new_per_order: tuple[int, int] = (1, 3),
    cross_cluster: float = 0.1,
    seed: int = 0,
) -> SyntheticData:
    """Orders the way real shop exports write them.

    Every order has several lines sharing one timestamp and one order id, written in
    product-code order (codes are grouped by department, so neighbouring lines are
    neighbouring codes). Each customer belongs to a department and re-buys a few staples on
    their own replenishment cycle (every 7-35 days, with jitter), and tries 1-3 products new to
    them per order, drawn by popularity (Zipf) from their department (sometimes another one),
    each together with its complement (products come in pairs of neighbouring codes, like pasta
    and its sauce, first bought in the same order).
    This reproduces both things retail validation gets wrong: a held-out LINE has its
    order-mates (and their product codes) in the input, and many targets are repeats.
    """
    rng = np.random.default_rng(seed)
    n_clusters = min(n_clusters, len(TOPICS))
    item_keys, texts, clusters = [], [], []
    for c in range(n_clusters):
        name, desc = TOPICS[c]
        for j in range(products_per_cluster):
            item_keys.append(f"P{c + 1}{j:04d}")  # product code: department then number
            texts.append(f"{name} product {j}. {desc}")
            clusters.append(c)
    zipf = 1.0 / np.arange(1, products_per_cluster + 1) ** 1.1
    zipf /= zipf.sum()
    events: list = []
    user_cluster: dict[str, int] = {}
    start = 1_700_000_000.0
    for u in range(n_customers):
        user = f"c{u:05d}"
        c = int(rng.integers(n_clusters))
        user_cluster[user] = c
        base = c * products_per_cluster
        staples = rng.choice(products_per_cluster, int(rng.integers(n_staples[0], n_staples[1] + 1)),
                             replace=False, p=zipf)
        cycle = {base + int(s): float(rng.integers(7, 36)) for s in staples}
        last: dict[int, float] = {}
        bought: set[int] = set()
        day = float(rng.integers(0, 14))
        n_order = 0
        while day < days:
            lines: set[int] = set()
            for item, every in cycle.items():
                if item not in last or day - last[item] >= every * rng.uniform(0.8, 1.2):
                    lines.add(item)
            for _ in range(int(rng.integers(new_per_order[0], new_per_order[1] + 1))):
                cc = int(rng.integers(n_clusters)) if rng.random() < cross_cluster else c
                fresh = [j for j in range(products_per_cluster) if cc * products_per_cluster + j not in bought]
                if not fresh:
                    continue
                p = zipf[fresh] / zipf[fresh].sum()
                pick = int(rng.choice(fresh, p=p))
                lines.add(cc * products_per_cluster + pick)
                mate = cc * products_per_cluster + (pick ^ 1)
                if mate not in bought and (pick ^ 1) < products_per_cluster:
                    lines.add(mate)
            if lines:
                ts = start + day * 86400.0 + float(rng.integers(8 * 3600, 20 * 3600))
                order_id = f"o{u:05d}-{n_order:03d}"
                n_order += 1
                for item in sorted(lines, key=lambda i: item_keys[i]):  # product-code order
                    events.append((user, item_keys[item], "purchase", ts, None, order_id))
                    last[item] = day
                    bought.add(item)
            day += float(rng.integers(3, 9))
    return SyntheticData(events, item_keys, texts, np.asarray(clusters), user_cluster, [])


def drifting_shop(
    n_customers: int = 600,
    n_items: int = 240,
    days: int = 120,
    hot_items: int = 12,
    hot_share: float = 0.6,
    lines_per_order: tuple[int, int] = (2, 5),
    after_days: int = 0,
    seed: int = 0,
) -> SyntheticData:
    """A shop whose best sellers move: ``hot_items`` products are on promotion, a third of them
    replaced every week, and make ``hot_share`` of the lines; the rest follow a fixed long-tailed (Zipf) popularity.
    Customers order every 3-14 days. So "what sold in the last weeks" predicts the next order far
    better than all-time sales, which a time-aware popularity must find on validation.
    ``after_days`` > 0 adds every customer's next order in the ``after_days`` days after ``days``:
    the orders a list computed at the end of the data is used for (``SyntheticData.events`` holds
    them too, marked by a timestamp >= the end; see :func:`drifting_shop_end`)."""
    rng = np.random.default_rng(seed)
    item_keys = [f"S{j:04d}" for j in range(n_items)]
    zipf = 1.0 / np.arange(1, n_items + 1) ** 1.0
    zipf /= zipf.sum()
    weeks = (days + after_days) // 7 + 1
    hot = [rng.choice(n_items, hot_items, replace=False)]
    for _ in range(weeks - 1):  # a third of the promotions change every week (each lasts ~3 weeks)
        stay = rng.choice(hot[-1], hot_items - hot_items // 3, replace=False)
        fresh = rng.choice(np.setdiff1d(np.arange(n_items), hot[-1]), hot_items // 3, replace=False)
        hot.append(np.concatenate([stay, fresh]))
    start = drifting_shop_end(0.0)
    events: list = []

    def order(user: str, u: int, n_order: int, day: float) -> None:
        week = int(day // 7)
        n = int(rng.integers(lines_per_order[0], lines_per_order[1] + 1))
        lines = {int(rng.choice(hot[week])) if rng.random() < hot_share else int(rng.choice(n_items, p=zipf))
                 for _ in range(n)}
        ts = start + day * 86400.0 + float(rng.integers(8 * 3600, 20 * 3600))
        for item in sorted(lines):
            events.append((user, item_keys[item], "purchase", ts, None, f"o{u:05d}-{n_order:03d}"))

    for u in range(n_customers):
        user = f"d{u:05d}"
        day, n_order = float(rng.integers(0, 14)), 0
        while day < days:
            order(user, u, n_order, day)
            n_order += 1
            day += float(rng.integers(3, 15))
        if after_days:
            order(user, u, n_order, days + float(rng.uniform(0, after_days)))
    return SyntheticData(events, item_keys, [f"product {j}" for j in range(n_items)], np.zeros(n_items, int),
                         {}, [])


def drifting_shop_end(days: float) -> float:
    """The timestamp ``days`` days after :func:`drifting_shop`'s first day."""
    return 1_700_000_000.0 + days * 86400.0

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

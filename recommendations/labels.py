"""Plain-language names and explanations of offline metrics, tasks and statuses, for the admin and dashboard.

A marketer reads "hit rate", not ``hr@10``. Unknown names still get a readable label (``recall@20``
-> "recall (top 20)"), so a metric added later never shows as a code name.
"""
from __future__ import annotations

import re

METRICS: dict[str, tuple[str, str]] = {
    "hr": ("hit rate", "share of customers whose next purchase was in their top {k}"),
    "ndcg": ("ranking quality (NDCG)",
             "like the hit rate, but a hit at rank 1 counts more than a hit at rank {k}; 0 to 1, higher is better"),
    "mrr": ("mean reciprocal rank", "1 / the rank of the next purchase, averaged: 1 when it was always ranked first"),
    "coverage": ("catalogue coverage", "share of the catalogue that appears in at least one customer's top {k}"),
    "cold_hr": ("hit rate on new items",
                "hit rate where the next purchase was an item with fewer than 5 past events"),
    "cold_ndcg": ("ranking quality on new items", "ranking quality where the next purchase was a little-known item"),
    "recall": ("recall", "share of the customer's next purchases found in their top {k}"),
    "precision": ("precision", "share of the top {k} that the customer went on to buy"),
    "expected_ndcg": ("expected ranking quality of the served list (NDCG)",
                      "the served list's validation (its places for new items included), weighted to the dates "
                      "of the customers' latest orders: what the list a customer gets should score on their next "
                      "order (the row below is the test's, an earlier order)"),
    "valid_ndcg": ("ranking quality on validation (NDCG)",
                   "the same measure on the validation orders, where the algorithms were compared: the choice "
                   "is made on this row"),
    "expected_customers": ("customers behind the expected quality",
                           "how many customers' worth of validation the date weighting keeps (fewer: wider margin)"),
    "n_targets": ("customers tested", "customers whose next purchase was held out to test the model"),
    "n_cold_targets": ("of which new items", "held-out purchases of items with fewer than 5 past events"),
    "n_targets_seen": ("of which repeat purchases", "held-out purchases of an item the customer had bought before"),
    "n_items": ("items in the catalogue", "items the model can recommend"),
    "fit_seconds": ("training time (seconds)", ""),
    "refit_epochs": ("epochs of the final fit", "the best epoch count found on validation, used for the final fit"),
}

TASKS: dict[str, tuple[str, str]] = {
    "discover": ("discover", "items the customer has not bought yet"),
    "buy_again": ("buy again", "items the customer buys repeatedly, when they are due"),
}

ALGORITHMS: dict[str, str] = {
    "popularity": "popularity (best sellers for everyone)",
    "trending": "trending (recent best sellers, older purchases fade)",
    "ease": "EASE (item-to-item linear model)",
    "ease_trending": "EASE + trending (what goes with a customer's purchases, mixed with what sells now)",
    "itemknn": "item k-NN (similar items)",
    "sequential": "sequential (order of a customer's events)",
    "buy_again": "buy again (replenishment cycles)",
    "auto": "automatic choice (best on validation)",
}

SPLITS = {
    "test": "test (held out)",
    "validation": "validation",
    "active_test": "serving version then, same test",
}

HEADLINE = ("hr@10", "ndcg@10")
_NAME = re.compile(r"^(?P<base>[a-z_]+?)(?:@(?P<k>\d+))?(?P<se>_se)?$")


def metric_label(name: str) -> str:
    """``hr@10`` -> "hit rate (top 10)"; ``ndcg@10_se`` -> "ranking quality (NDCG) (top 10), standard error"."""
    match = _NAME.match(name)
    if not match:
        return name.replace("_", " ")
    base, k, se = match["base"], match["k"], match["se"]
    label = METRICS.get(base, (base.replace("_", " "), ""))[0]
    if k:
        label += f" (top {k})"
    return label + (", standard error" if se else "")


def metric_help(name: str) -> str:
    match = _NAME.match(name)
    if not match or match["base"] not in METRICS:
        return ""
    return METRICS[match["base"]][1].format(k=match["k"] or 10)


def task_label(name: str) -> str:
    return TASKS.get(name, (name.replace("_", " "), ""))[0]


def algorithm_label(name: str) -> str:
    return ALGORITHMS.get(name, name.replace("_", " "))


def is_empty_slice(name: str, metrics: dict) -> bool:
    """A cold-start metric measured on zero cold targets is "n/a", not 0."""
    return name.startswith("cold_") and metrics.get("n_cold_targets") == 0


def headline_metrics(metrics: dict | None) -> dict[str, dict]:
    """``{task: {metric: value, metric_se: se, "baselines": {...}}}`` from either layout.

    Newer versions store ``metrics["tasks"][task]``; older ones flat keys (in ``metrics["test"]``
    or at the top level), which mean the discover task.
    """
    metrics = metrics or {}
    tasks = metrics.get("tasks")
    if isinstance(tasks, dict) and tasks:
        return {name: values for name, values in tasks.items() if isinstance(values, dict)}
    source = metrics.get("test") if isinstance(metrics.get("test"), dict) else metrics
    flat = {k: v for k, v in source.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if not flat:
        return {}
    candidates = metrics.get("candidates")
    if isinstance(candidates, dict) and isinstance(candidates.get("popularity"), dict):
        flat = {**flat, "baselines": {"popularity": candidates["popularity"]}}
    return {"discover": flat}


def metric_number(values: dict, name: str) -> float | None:
    value = values.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

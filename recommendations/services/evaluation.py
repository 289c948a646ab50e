"""Offline evaluation of algorithms on the CRM's data, without touching what is served.

Both lists are measured on their own task with the leak-free basket protocol: ``discover`` on the
held-out orders' new items (bought items excluded, full catalogue) for each algorithm, and
``buy_again`` on their repeat items (the ranker next to "most frequent" and "most recent").
"""

from __future__ import annotations

import time

from ..engine.data import leave_last_out_split, time_window_split
from ..engine.metrics import evaluate
from ..engine.models import BuyAgain
from ..engine.tasks import LIST_BUY_AGAIN, LIST_DISCOVER
from ..selectors import model_version_active
from .embedding import item_embeddings_refresh
from .training import _fit, algorithm_params, dataset_from_crm

BUY_AGAIN_ROWS = {"buy_again": "learned", "most_frequent": "frequency", "most_recent": "recency"}


def evaluate_algorithms(
    *, algorithms: list[str] | None = None, protocol: str = "leave-last-out", k: int = 10, window_days: float = 7.0
) -> dict:
    """Fit each algorithm on the protocol's training part and measure full-ranking metrics, with
    standard errors, on each task's targets. Returns ``{"tasks": {task: {name: metrics}}, ...}``;
    ``algorithms`` (the discover task) is kept as a flat alias."""
    if not algorithms:
        active = model_version_active()
        algorithms = sorted({"popularity", "ease", active.algorithm if active else "sequential"})
    item_embeddings_refresh()
    data = dataset_from_crm()
    if protocol == "time-window":
        end = float(data.dataset.ts.max())
        data.split = time_window_split(data.dataset, end - window_days * 86400, window_days * 86400)
    else:
        data.split = leave_last_out_split(data.dataset)
    train = data.split.train_valid
    targets, repeat = data.split.test, data.split.test_repeat
    if len(targets) == 0 and len(repeat) == 0:
        raise ValueError("The protocol leaves no test targets: too little data for this split.")
    discover = {}
    for name in algorithms:
        if not len(targets):
            break
        started = time.perf_counter()
        model = _fit(name, algorithm_params(name), data, None)
        fit_seconds = time.perf_counter() - started
        model.set_histories(train)
        discover[name] = {**evaluate(model, train, targets, k=k, now=data.split.test_now),
                          "fit_seconds": round(fit_seconds, 2)}
    buy_again = {}
    for name, mode in BUY_AGAIN_ROWS.items():
        if not len(repeat):
            break
        started = time.perf_counter()
        ranker = BuyAgain(mode=mode).fit(data.split.train)
        fit_seconds = time.perf_counter() - started
        ranker.set_histories(train)
        ranker.set_now(data.split.test_now)
        buy_again[name] = {**evaluate(ranker, train, repeat, k=k, task=LIST_BUY_AGAIN),
                           "fit_seconds": round(fit_seconds, 2)}
    return {"protocol": protocol, "k": k, "targets": int(len(targets)), "repeat_targets": int(len(repeat)),
            "algorithms": discover, "tasks": {LIST_DISCOVER: discover, LIST_BUY_AGAIN: buy_again}}

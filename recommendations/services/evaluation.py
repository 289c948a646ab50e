"""Offline evaluation of algorithms on the CRM's data, without touching what is served."""

from __future__ import annotations

import time

from ..engine.data import leave_last_out_split, time_window_split
from ..engine.metrics import evaluate
from ..selectors import model_version_active
from .embedding import item_embeddings_refresh
from .training import _fit, algorithm_params, dataset_from_crm


def evaluate_algorithms(
    *, algorithms: list[str] | None = None, protocol: str = "leave-last-out", k: int = 10, window_days: float = 7.0
) -> dict:
    """Fit each algorithm on the protocol's training part and measure full-ranking metrics on its targets."""
    if not algorithms:
        active = model_version_active()
        algorithms = sorted({"popularity", active.algorithm if active else "sequential"})
    item_embeddings_refresh()
    data = dataset_from_crm()
    if protocol == "time-window":
        end = float(data.dataset.ts.max())
        data.split = time_window_split(data.dataset, end - window_days * 86400, window_days * 86400)
        train, targets = data.split.train, data.split.test
    else:
        data.split = leave_last_out_split(data.dataset)
        train, targets = data.split.train_valid, data.split.test
    if len(targets) == 0:
        raise ValueError("The protocol leaves no test targets: too little data for this split.")
    results = {}
    for name in algorithms:
        started = time.perf_counter()
        model = _fit(name, algorithm_params(name), data, None)
        fit_seconds = time.perf_counter() - started
        model.set_histories(train)
        results[name] = {**evaluate(model, train, targets, k=k), "fit_seconds": round(fit_seconds, 2)}
    return {"protocol": protocol, "k": k, "targets": int(len(targets)), "algorithms": results}

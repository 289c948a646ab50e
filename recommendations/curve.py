"""The training curve of a run, read back from its log: one point per epoch with loss and validation metrics.

Training writes lines such as ``[12:01:02] sequential: epoch=3, loss=0.5123, seconds=1.2,
valid_ndcg=0.1234, valid_hr=0.2, best_epoch=3`` (``services.training._select``); parsing the log keeps
the curve available for every run ever recorded, without another column.
"""
from __future__ import annotations

import re

from crm.charts import chart, dataset

_LINE = re.compile(r"^\[[\d:]+\] (?P<algo>[\w-]+): (?P<pairs>epoch=\d+.*)$")
_PAIR = re.compile(r"(\w+)=([-+\w.]+)")


def training_curve(log: str) -> dict[str, list[dict[str, float]]]:
    """``{algorithm: [{"epoch": 1, "loss": ..., "valid_ndcg": ...}, ...]}`` in log order."""
    curves: dict[str, list[dict[str, float]]] = {}
    for line in (log or "").splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        point: dict[str, float] = {}
        for key, raw in _PAIR.findall(match["pairs"]):
            try:
                point[key] = float(raw)
            except ValueError:
                continue
        if "epoch" in point:
            curves.setdefault(match["algo"], []).append(point)
    return curves


def training_curve_chart(log: str) -> dict:
    """Loss (left axis) and validation hit rate / ranking quality (right axis) per epoch.

    Only algorithms trained over several epochs have a curve; one-shot fits (popularity, EASE) are
    a single point and are left out.
    """
    curves = {algo: points for algo, points in training_curve(log).items() if len(points) > 1}
    n_epochs = max((int(p["epoch"]) for points in curves.values() for p in points), default=0)
    labels = list(range(1, n_epochs + 1))
    datasets, index = [], 0
    prefix = len(curves) > 1
    for algo, points in curves.items():
        by_epoch = {int(p["epoch"]): p for p in points}
        for key, label, axis in (("loss", "training loss", "y"), ("valid_hr", "validation hit rate", "y2"),
                                 ("valid_ndcg", "validation ranking quality", "y2")):
            values = [by_epoch.get(e, {}).get(key) for e in labels]
            if all(v is None for v in values):
                continue
            datasets.append(dataset(f"{algo}: {label}" if prefix else label, values, index, yAxisID=axis,
                                    tension=0.2, spanGaps=True))
            index += 1
    return chart("line", labels, datasets, x_title="epoch", y_title="loss", y2_title="validation")

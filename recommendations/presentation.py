"""What the model registry's admin pages show: measures in plain words, the compared candidates, training
settings and the quality of the latest versions (HTML fragments built with ``crm.admin_html`` and chart
specifications for ``crm.charts``). Read only: nothing here writes.
"""
from __future__ import annotations

from typing import Any

from django.utils.html import format_html, format_html_join

from crm.admin_html import data_table_html, key_value_html
from crm.charts import chart, dataset

from .labels import (
    HEADLINE,
    SPLITS,
    TASKS,
    algorithm_label,
    headline_metrics,
    is_empty_slice,
    metric_help,
    metric_label,
    metric_number,
    task_label,
)
from .models import ModelVersion


def metric_value(metrics: dict, name: str) -> float | None:
    """A headline metric, from the held-out test split when the run stored one (``metrics["test"]``)."""
    for source in (metrics.get("test"), metrics):
        if isinstance(source, dict) and isinstance(source.get(name), int | float):
            return float(source[name])
    return None


def _format_value(value: Any, *, fixed: bool = False) -> str:
    """Metrics (``fixed``) get four decimals so columns line up; other numbers their natural precision."""
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.1f}"
        return f"{value:.4f}" if fixed else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(_format_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_format_value(v)}" for k, v in value.items())
    return str(value)


def json_dict_html(data: dict | None) -> str:
    """A two-column table of a flat JSON dict (parameters, data statistics, timings; nested values inline)."""
    if not data:
        return "—"
    return key_value_html((key, _format_value(value)) for key, value in data.items())


# the order of the measures in a metrics table: what the served list should score first, then the
# test's quality measures, then its sizes
METRIC_ORDER = ("expected_ndcg", "ndcg", "valid_ndcg", "hr", "mrr", "coverage", "cold_hr", "cold_ndcg",
                "n_targets", "n_cold_targets", "n_targets_seen", "expected_customers", "n_items")


def _metric_cell(values: dict, name: str) -> str:
    """A value with its standard error when stored (``<name>_se``); "n/a" for an empty slice."""
    if is_empty_slice(name, values):
        return "n/a"
    value = values.get(name)
    if value is None or value == "—":
        return "n/a"
    text = _format_value(value, fixed=isinstance(value, float) and not name.endswith("seconds"))
    se = values.get(f"{name}_se")
    if isinstance(se, int | float) and not isinstance(se, bool):
        text += f" ± {se:.4f}"
    return text


def _metric_rows(names, columns: list[dict]) -> str:
    return format_html_join(
        "",
        '<tr><th title="{}">{}</th>{}<td class="help">{}</td></tr>',
        (
            (metric_help(name), metric_label(name),
             format_html_join("", "<td>{}</td>", ((_metric_cell(column, name),) for column in columns)),
             metric_help(name))
            for name in names
        ),
    )


def _metric_names(columns: list[dict]) -> list[str]:
    """The numeric measures of ``columns``, in :data:`METRIC_ORDER` (the stored order is lost:
    PostgreSQL's jsonb keeps keys by length), then any others by name."""
    names = {
        name for column in columns for name, value in column.items()
        if not name.endswith("_se") and isinstance(value, int | float) and not isinstance(value, bool)
    }
    rank = {base: n for n, base in enumerate(METRIC_ORDER)}
    return sorted(names, key=lambda name: (rank.get(name.split("@")[0], len(rank)), name))


def version_metrics_html(metrics: dict | None) -> str:
    """Offline measures in plain words: per task when stored that way, else per split (test, validation)."""
    if not metrics:
        return "No measures recorded."
    tasks = metrics.get("tasks")
    if isinstance(tasks, dict) and tasks:
        parts = []
        for task, values in tasks.items():
            if not isinstance(values, dict):
                continue
            baselines = values.get("baselines") if isinstance(values.get("baselines"), dict) else {}
            baselines = {name: b for name, b in baselines.items() if isinstance(b, dict) and b}
            columns = [values, *baselines.values()]
            header = format_html_join("", "<th>{}</th>", (
                (label,) for label in ["this version", *(f"vs {algorithm_label(b)}" for b in baselines)]))
            parts.append(format_html(
                '<h3 class="tailored-task">{}: {}</h3><table class="tailored-metrics"><tr><th>measure</th>{}'
                "<th>what it means</th></tr>{}</table>",
                task_label(task), TASKS.get(task, ("", ""))[1], header, _metric_rows(_metric_names(columns), columns),
            ))
        return format_html_join("", "{}", ((part,) for part in parts)) or "No measures recorded."
    columns = {k: v for k, v in metrics.items() if isinstance(v, dict) and k not in ("candidates", "tasks")}
    if not columns:  # a flat dict of metric -> value
        columns = {"test": metrics}
    labels = dict(SPLITS)
    active = columns.get("active_test")
    if active and active.get("version"):
        labels["active_test"] = f"serving version then (v{active['version']}), same test"
    header = format_html_join("", "<th>{}</th>", ((labels.get(c, c.replace("_", " ")),) for c in columns))
    body = _metric_rows(_metric_names(list(columns.values())), list(columns.values()))
    protocol = metrics.get("protocol")
    note = format_html('<p class="help">How it was measured: {}.</p>', protocol) if protocol else ""
    return format_html('<table class="tailored-metrics"><tr><th>measure</th>{}<th>what it means</th></tr>{}</table>{}',
                       header, body, note)


def candidates_html(metrics: dict | None) -> str:
    """The algorithms an ``auto`` run compared, with their validation measures."""
    candidates = (metrics or {}).get("candidates")
    if not isinstance(candidates, dict) or not candidates:
        return "Only one algorithm was trained."
    names = [n for n in dict.fromkeys(m for v in candidates.values() if isinstance(v, dict) for m in v)
             if n != "error"]
    rows = (
        (algorithm_label(algo), *(_metric_cell(v, n) for n in names), f"failed: {v['error']}" if v.get("error") else "")
        for algo, v in candidates.items()
        if isinstance(v, dict)
    )
    return data_table_html(["algorithm", *(metric_label(n) for n in names), ""], rows)


def version_quality_chart(limit: int = 15) -> dict:
    """Hit rate per task across the latest versions, with standard-error whiskers where stored."""
    versions = list(ModelVersion.objects.order_by("-id")[:limit])[::-1]
    per_version = [headline_metrics(v.metrics) for v in versions]
    tasks = list(dict.fromkeys(task for metrics in per_version for task in metrics))
    datasets = []
    for index, task in enumerate(tasks):
        for offset, name in enumerate(HEADLINE):
            values = [metric_number(m.get(task, {}), name) for m in per_version]
            if all(v is None for v in values):
                continue
            ses = [metric_number(m.get(task, {}), f"{name}_se") for m in per_version]
            bars = [[v - s, v + s] if v is not None and s is not None else None for v, s in zip(values, ses)]
            label = metric_label(name).replace(" (top 10)", "")
            datasets.append(dataset(f"{task_label(task)}: {label}" if len(tasks) > 1 else label, values,
                                    index * 2 + offset, errorBars=bars if any(bars) else None))
    labels = [f"v{v.pk}{' (serving)' if v.is_active else ''}" for v in versions]
    spec = chart("bar", labels, datasets, y_title="higher is better")
    tops = [bar[1] for ds in datasets for bar in (ds.get("errorBars") or []) if bar]
    if tops:  # leave room for the whiskers
        spec["options"]["scales"]["y"]["suggestedMax"] = max(tops) * 1.05
    return spec

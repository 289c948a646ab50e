"""Chart specifications for the admin: plain dicts (no code) that ``static/crm/charts.js`` hands to Chart.js.

Pages pass a spec to the template with ``json_script``; the script reads it, so no data is ever
concatenated into JavaScript. A spec is ``{"type", "data": {"labels", "datasets"}, "options"}`` as
Chart.js expects, plus two Tailored extras read by ``charts.js``:

- ``dataset["errorBars"]``: ``[[low, high] | null, ...]`` drawn as whiskers around each point or bar;
- ``spec["yPercent"]`` / ``spec["xPercent"]``: tick labels as percentages (values are fractions).
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.html import format_html, json_script

PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9", "#84cc16", "#ec4899")


def currency() -> str:
    """The currency of amounts shown in the admin (``TAILORED_CURRENCY``, default EUR)."""
    return getattr(settings, "TAILORED_CURRENCY", "EUR") or "EUR"


def money(amount: Any) -> str:
    """``1234.5`` -> ``"1,234.50 EUR"``; None -> ``"n/a"``."""
    if amount is None:
        return "n/a"
    return f"{float(amount):,.2f} {currency()}"


def percent(fraction: float | None, digits: int = 1) -> str:
    """A share as a percentage; None (an empty group) -> ``"n/a"``."""
    return "n/a" if fraction is None else f"{fraction:.{digits}%}"


def dataset(label: str, values: list, index: int = 0, **extra: Any) -> dict:
    color = PALETTE[index % len(PALETTE)]
    return {"label": label, "data": values, "backgroundColor": color, "borderColor": color, **extra}


def chart(
    kind: str,
    labels: list,
    datasets: list[dict],
    *,
    title: str = "",
    y_percent: bool = False,
    x_percent: bool = False,
    stacked: bool = False,
    horizontal: bool = False,
    y_title: str = "",
    x_title: str = "",
    y2_title: str = "",
) -> dict:
    """A Chart.js configuration with Tailored's defaults (legend at the bottom, no animation)."""
    scales: dict[str, dict] = {
        "x": {"stacked": stacked, "title": {"display": bool(x_title), "text": x_title}},
        "y": {"stacked": stacked, "beginAtZero": True, "title": {"display": bool(y_title), "text": y_title}},
    }
    if y2_title:
        scales["y2"] = {"position": "right", "beginAtZero": True, "grid": {"drawOnChartArea": False},
                        "title": {"display": True, "text": y2_title}}
    options: dict[str, Any] = {
        "responsive": True,
        "maintainAspectRatio": False,
        "animation": False,
        "plugins": {
            "legend": {"position": "bottom", "display": len(datasets) > 1},
            "title": {"display": bool(title), "text": title},
        },
        "scales": scales,
    }
    if horizontal:
        options["indexAxis"] = "y"
    return {
        "type": kind,
        "data": {"labels": labels, "datasets": datasets},
        "options": options,
        "yPercent": y_percent,
        "xPercent": x_percent,
    }


def has_data(spec: dict | None) -> bool:
    """True when at least one dataset has a non-null value (an empty chart is replaced by a sentence)."""
    if not spec:
        return False
    return any(v is not None for ds in spec["data"]["datasets"] for v in ds.get("data", []))


def chart_html(spec: dict | None, element_id: str, *, height: int = 260, empty: str = "Not enough data yet.",
               poll_url: str = "") -> str:
    """A canvas that ``static/crm/charts.js`` draws from the spec's ``json_script``; a sentence if there is no data.

    ``height`` is one of the CSS classes ``tailored-h180/220/260/320``. With ``poll_url`` the chart is
    refreshed from that JSON endpoint until it answers ``done``.
    """
    if not has_data(spec) and not poll_url:
        return format_html('<p class="tailored-empty">{}</p>', empty)
    poll = format_html(' data-poll="{}"', poll_url) if poll_url else ""
    return format_html(
        '{}<div class="tailored-chart tailored-h{}"><canvas data-chart="{}"{} role="img" aria-label="chart"></canvas>'
        "</div>",
        json_script(spec, element_id), height, element_id, poll,
    )

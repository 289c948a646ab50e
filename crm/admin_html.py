"""HTML fragments the admin pages of every app share: a label/value table, a table with a header row, a
progress bar. What a page shows (which rows, in which words) is the app's own ``presentation`` module;
these only say how it looks.

Every value is escaped (``format_html``), and nothing carries an inline style, so the
Content-Security-Policy needs no 'unsafe-inline': the look is in ``static/crm/admin.css``.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.utils.html import format_html, format_html_join


def key_value_html(rows: Iterable[tuple[Any, Any]]) -> str:
    """A two-column table: each row's label (``<th>``) and its value."""
    body = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
    return format_html('<table class="tailored-kv">{}</table>', body)


def data_table_html(
    header: Iterable[str], rows: Iterable[Sequence[Any]], *, css_class: str = "tailored-metrics"
) -> str:
    """A table with a header row; each row's first cell names it (``<th>``), the others are values."""
    head = format_html_join("", "<th>{}</th>", ((label,) for label in header))
    body = format_html_join("", "<tr><th>{}</th>{}</tr>", (
        (row[0], format_html_join("", "<td>{}</td>", ((cell,) for cell in row[1:]))) for row in rows))
    return format_html('<table class="{}"><tr>{}</tr>{}</table>', css_class, head, body)


def progress_html(fraction: float | None) -> str:
    """A ``<progress>`` element with its percentage beside it (a fraction outside 0..1 is clamped)."""
    percent = max(0.0, min(1.0, fraction or 0.0)) * 100
    return format_html(
        '<progress class="tailored-progress" max="100" value="{}" title="{}%">{}%</progress>'
        '<span class="tailored-progress-label">{}%</span>',
        f"{percent:.1f}",
        f"{percent:.0f}",
        f"{percent:.0f}",
        f"{percent:.0f}",
    )

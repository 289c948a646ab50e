"""Template helpers of the admin: chart canvases fed by ``json_script`` and the grouped app list."""
from __future__ import annotations

from django import template

from crm.charts import chart_html

register = template.Library()
SYSTEM_APPS = {"auth", "django_celery_beat", "authtoken"}


@register.simple_tag
def chart_canvas(spec: dict | None, element_id: str, height: int = 260, empty: str = "Not enough data yet.",
                 poll_url: str = "") -> str:
    return chart_html(spec, element_id, height=height, empty=empty, poll_url=poll_url)


@register.filter
def app_group(app_list: list[dict]) -> dict[str, list[dict]]:
    """Business apps first; user accounts and the scheduler's tables (periodic tasks, clocks) under "System"."""
    return {
        "business": [app for app in app_list if app["app_label"] not in SYSTEM_APPS],
        "system": [app for app in app_list if app["app_label"] in SYSTEM_APPS],
    }

"""The admin dashboard's template tag (campaigns sits on top of crm and recommendations, so it may read all)."""
from __future__ import annotations

from django import template

register = template.Library()


@register.simple_tag
def tailored_dashboard() -> dict:
    from campaigns.dashboard import dashboard

    return dashboard()

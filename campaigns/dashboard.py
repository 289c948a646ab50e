"""The admin dashboard's numbers (read only). Lives in campaigns, the top of ``crm <- recommendations <-
campaigns``, because it reads all three apps.

Every block degrades to a sentence when there is nothing to show ("no model trained yet"), and no
block may fail the page: the health block in particular catches a broker that cannot be reached.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from crm.charts import chart, dataset, money, percent
from crm.models import Customer, Interaction, Item, Segment
from crm.segments import SegmentRuleError
from crm.selectors import segment_evaluate
from recommendations.labels import HEADLINE, algorithm_label, headline_metrics, metric_help, metric_label, task_label
from recommendations.models import ModelVersion, TrainingRun

from .models import Recipient
from .presentation import (
    funnel_chart,
    funnel_rows,
    last_sent_campaign,
    next_scheduled,
    revenue_attributed,
    uplift_chart,
    uplift_text,
)
from .services.results import campaign_results

logger = logging.getLogger(__name__)
EVENT_DAYS = 90
QUEUES = ("default", "gpu")
KIND_LABELS = {Interaction.Kind.VIEW: "views", Interaction.Kind.ADD_TO_CART: "added to cart",
               Interaction.Kind.PURCHASE: "purchases"}


def headline() -> dict[str, Any]:
    customers = Customer.objects.count()
    contactable = Customer.objects.contactable().count()
    since = timezone.now() - timedelta(days=30)
    return {
        "customers": customers,
        "contactable": contactable,
        "contactable_share": percent(contactable / customers if customers else None, 0),
        "items": Item.objects.available().count(),
        "events_30d": Interaction.objects.filter(occurred_at__gte=since).count(),
        "revenue_attributed": money(revenue_attributed()),
    }


def events_chart(days: int = EVENT_DAYS) -> dict:
    """Events per day over the last ``days`` days, one line per kind (views, carts, purchases)."""
    today = timezone.localdate()
    latest = Interaction.objects.order_by("-occurred_at").values_list("occurred_at", flat=True).first()
    if latest is not None:  # imported or demo data may stop before today: end the axis at the last event
        today = min(today, timezone.localdate(latest))
    start = today - timedelta(days=days - 1)
    rows = (
        Interaction.objects.filter(occurred_at__date__gte=start, kind__in=list(KIND_LABELS))
        .annotate(day=TruncDate("occurred_at")).order_by().values("day", "kind").annotate(n=Count("id"))
        .values_list("day", "kind", "n")
    )
    counts = {(day, kind): n for day, kind, n in rows}
    days_list = [start + timedelta(days=n) for n in range(days)]
    datasets = [
        dataset(label, [counts.get((day, kind), 0) for day in days_list], index, pointRadius=0, tension=0.2,
                **({"yAxisID": "y2"} if kind == Interaction.Kind.VIEW else {}))
        for index, (kind, label) in enumerate(KIND_LABELS.items())
    ]
    return chart("line", [day.strftime("%d %b") for day in days_list], datasets, y_title="carts and purchases",
                 y2_title="views")


def model_summary() -> dict[str, Any] | None:
    """The active version with its headline metrics per task, against the previous version and popularity."""
    active = ModelVersion.objects.filter(is_active=True).first()
    if active is None:
        return None
    previous = active.previous
    mine, theirs = headline_metrics(active.metrics), headline_metrics(previous.metrics if previous else None)
    rows = []
    for task, values in mine.items():
        baselines = values.get("baselines") if isinstance(values.get("baselines"), dict) else {}
        popularity = baselines.get("popularity") or {}
        for name in HEADLINE:
            if name not in values:
                continue
            rows.append({
                "task": task_label(task), "metric": metric_label(name), "help": metric_help(name),
                "value": _fmt(values.get(name)),
                "previous": _fmt(theirs.get(task, {}).get(name)) if previous else "n/a",
                "popularity": _fmt(popularity.get(name)),
            })
    return {"version": active, "algorithm": algorithm_label(active.algorithm), "previous": previous, "rows": rows}


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) and not isinstance(value, bool) else "n/a"


def last_campaign() -> dict[str, Any] | None:
    campaign = last_sent_campaign()
    if campaign is None:
        return None
    results = campaign_results(campaign=campaign, refresh=False)
    return {
        "campaign": campaign, "results": results, "funnel": funnel_rows(results), "funnel_chart": funnel_chart(results),
        "purchase_uplift": uplift_text(results["purchase_uplift"]), "uplift_chart": uplift_chart(results),
        "revenue": money(results["revenue"]),
    }


def queue_lengths() -> tuple[list[tuple[str, int | None]], str]:
    """(queue, waiting messages) per Celery queue, and a sentence on the broker."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return [], "No broker configured: training, scoring and sends run inside the command or request."
    url = settings.CELERY_BROKER_URL
    try:
        if url.startswith(("redis://", "rediss://")):
            import redis  # Celery keeps each queue as a Redis list of the same name

            client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
            lengths = [(name, int(client.llen(name))) for name in QUEUES]
        else:
            from kombu import Connection
            from kombu.exceptions import ChannelError

            lengths = []
            with Connection(url, connect_timeout=1) as conn:
                channel = conn.channel()
                for name in QUEUES:
                    try:
                        lengths.append((name, channel.queue_declare(queue=name, passive=True).message_count))
                    except ChannelError:  # never declared: nothing was ever queued there
                        lengths.append((name, 0))
        return lengths, "Broker reachable."
    except Exception as exc:  # a dashboard must render even when the broker is down
        logger.warning("dashboard: broker unreachable: %s", exc)
        return [], f"Broker unreachable ({type(exc).__name__}): queued work waits until it is back."


def health() -> dict[str, Any]:
    week = timezone.now() - timedelta(days=7)
    queues, broker = queue_lengths()
    last_ok = TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED).order_by("-finished_at").first()
    active = ModelVersion.objects.filter(is_active=True).first()
    return {
        "queues": queues,
        "broker": broker,
        "last_training": last_ok,
        "last_scoring": active.activated_at if active else None,
        "running": TrainingRun.objects.filter(status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING])
        .order_by("-created_at").first(),
        "failed_runs": TrainingRun.objects.filter(status=TrainingRun.Status.FAILED, created_at__gte=week).count(),
        "failed_sends": Recipient.objects.filter(state=Recipient.State.FAILED, failed_at__gte=week).count(),
        "in_doubt": Recipient.objects.in_doubt().count(),
    }


def segment_reach(limit: int = 8) -> dict | None:
    """Per saved segment: customers now, and how many of them may be e-mailed."""
    labels, sizes, reachable = [], [], []
    for segment in Segment.objects.order_by("name")[:limit]:
        try:
            audience = segment_evaluate(segment=segment)
            size = audience.count()
            contactable = audience.filter(pk__in=Customer.objects.contactable().values("pk")).count()
        except SegmentRuleError:
            continue
        labels.append(segment.name)
        sizes.append(size)
        reachable.append(contactable)
    if not labels:
        return None
    return chart("bar", labels, [dataset("customers", sizes, 5), dataset("may be e-mailed", reachable, 2)],
                 horizontal=True)


def dashboard() -> dict[str, Any]:
    return {
        "headline": headline(),
        "events_chart": events_chart(),
        "model": model_summary(),
        "scheduled": next_scheduled(),
        "last_campaign": last_campaign(),
        "health": health(),
        "segments_chart": segment_reach(),
    }

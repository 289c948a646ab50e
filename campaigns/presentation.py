"""Read-side presentation of campaign results for the admin and the dashboard: funnel, uplift, per-item
performance, in plain words, as chart specifications (``crm.charts``) and as the admin's HTML fragments
(built with ``crm.admin_html``).

Nothing here writes; the numbers come from ``services.results.campaign_results`` and plain queries.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.html import escape, format_html, format_html_join

from crm.admin_html import data_table_html
from crm.charts import chart, chart_html, dataset, money, percent
from crm.models import Interaction, Item

from .conf import campaigns_settings
from .links import click_url, open_url, unsubscribe_url
from .models import Campaign, Click, Recipient

STATUS_HELP = {
    Campaign.Status.DRAFT: "being prepared; nothing built or sent",
    Campaign.Status.SCHEDULED: "will be built and sent at its send time or on its recurring schedule",
    Campaign.Status.BUILDING: "choosing recipients and their items",
    Campaign.Status.READY: "recipients and items chosen; not sent yet",
    Campaign.Status.SENDING: "e-mails are going out",
    Campaign.Status.SENT: "every e-mail of the latest run went out; results keep updating",
    Campaign.Status.PAUSED: "sending stopped; resume by sending again",
    Campaign.Status.CANCELLED: "stopped for good",
    Campaign.Status.FAILED: "the build or the send failed; see the recipients marked failed",
}

STATE_HELP = {
    Recipient.State.PENDING: "waiting to be sent",
    Recipient.State.SENDING: "handed to the mail server, never confirmed: check before re-sending",
    Recipient.State.SENT: "accepted by the mail server",
    Recipient.State.FAILED: "the mail server refused it",
    Recipient.State.SKIPPED: "not sent, for the reason shown",
    Recipient.State.HOLDOUT: "kept out on purpose, to measure what the campaign adds",
}

FUNNEL = (("sent", "sent"), ("opened", "opened"), ("clicked", "clicked"),
          ("converted", "bought a clicked item"))


def funnel_rows(results: dict) -> list[dict[str, Any]]:
    """Each funnel step with its count, its share of sent, and its share of the step before."""
    rows, previous = [], None
    sent = results.get("sent") or 0
    for key, label in FUNNEL:
        count = results.get(key) or 0
        rows.append({
            "key": key, "label": label, "count": count,
            "of_sent": percent(count / sent if sent else None),
            "of_previous": "" if previous is None else percent(count / previous if previous else None),
        })
        previous = count
    return rows


def funnel_html(results: dict) -> str:
    """The funnel as a table (each step's customers, with their share of sent and of the step before) and a chart."""
    table = data_table_html(
        ["step", "customers", "of sent", "of previous"],
        ((r["label"], f"{r['count']:,}", r["of_sent"], r["of_previous"]) for r in funnel_rows(results)),
        css_class="tailored-metrics tailored-funnel",
    )
    return format_html('{}<p class="help">Clicks by link scanners are not counted.</p>{}', table,
                       chart_html(funnel_chart(results), "chart-funnel", height=180, empty="Nothing sent yet."))


def funnel_chart(results: dict) -> dict:
    rows = funnel_rows(results)
    return chart("bar", [r["label"] for r in rows], [dataset("recipients", [r["count"] for r in rows])],
                 horizontal=True, x_title="recipients")


def uplift_text(ci: dict | None) -> str:
    """"+1.2 points (95% CI -0.4 to +2.8)" or "not enough data yet"."""
    if ci is None:
        return "not enough data yet (no sent or no holdout recipients)"
    if ci["ci_low"] == ci["ci_high"] == ci["uplift"] == 0:
        return "not enough data yet (no one in either group did it)"
    verdict = "a real effect" if ci["significant"] else "could still be chance"
    return (f"{ci['uplift'] * 100:+.1f} points (95% interval {ci['ci_low'] * 100:+.1f} to {ci['ci_high'] * 100:+.1f}): "
            f"{percent(ci['treated_rate'])} of e-mailed vs {percent(ci['control_rate'])} of holdout customers; "
            f"{verdict}")


def uplift_html(results: dict) -> str:
    """Both uplifts (buying a recommended item, clicking) in words and as a chart."""
    lines = format_html_join("", "<p><strong>{}:</strong> {}</p>", (
        ("Bought a recommended item", uplift_text(results["purchase_uplift"])),
        ("Clicked (holdout customers get no e-mail, so they never click)", uplift_text(results["click_uplift"])),
    ))
    return format_html("{}{}", lines, chart_html(uplift_chart(results), "chart-uplift", height=180,
                                                  empty="Not enough data yet."))


def uplift_chart(results: dict) -> dict | None:
    """The two uplifts as bars with their 95% interval as whiskers; None when neither can be measured."""
    rows = [(label, results.get(key)) for key, label in (
        ("purchase_uplift", "bought a recommended item"), ("click_uplift", "clicked"))]
    rows = [(label, ci) for label, ci in rows if ci is not None]
    if not rows:
        return None
    spec = chart("bar", [label for label, _ in rows], [dataset(
        "uplift vs holdout", [ci["uplift"] for _, ci in rows], 0,
        errorBars=[[ci["ci_low"], ci["ci_high"]] for _, ci in rows])],
        horizontal=True, x_percent=True, x_title="difference in share of customers (95% interval)")
    low = min(0.0, *(ci["ci_low"] for _, ci in rows))
    high = max(0.0, *(ci["ci_high"] for _, ci in rows))
    pad = (high - low) * 0.05 or 0.01
    spec["options"]["scales"]["x"].update({"suggestedMin": low - pad, "suggestedMax": high + pad,
                                           "beginAtZero": False})
    return spec


def results_summary(results: dict) -> list[tuple[str, str]]:
    """Label -> value rows in plain words; counts that are zero because a group is empty read "n/a"."""
    rows = [
        ("customers in this run", f"{results['recipients']:,}"),
        ("e-mailed", f"{results['sent']:,}"),
        ("kept out as holdout", f"{results['holdout']:,}"),
        ("skipped", f"{results['skipped']:,}"),
        ("waiting to send", f"{results['pending']:,}"),
        ("failed", f"{results['failed']:,}"),
        ("in doubt (never confirmed)", f"{results['in_doubt']:,}"),
        ("clicks ignored as link scanners", f"{results['scanner_flagged']:,}"),
        ("unsubscribed from this e-mail", f"{results['unsubscribed']:,}"),
        ("delivered (provider confirmed)", f"{results.get('delivered', 0):,}"),
        ("bounced", f"{results.get('bounced', 0):,}"),
        ("marked as spam", f"{results.get('complained', 0):,}"),
        ("opens by mail-client prefetch (not counted)", f"{results.get('machine_opens', 0):,}"),
        ("revenue attributed", money(results["revenue"]) if results["sent"] else "n/a"),
        ("attribution window", f"{results['attribution_days']} days after a click"),
    ]
    labels = dict(Recipient.SkipReason.choices)
    rows += [(f"skipped: {labels.get(reason, reason)}", f"{n:,}") for reason, n in results["skipped_by_reason"].items()]
    return rows


def item_performance(*, campaign: Campaign, limit: int = 15) -> list[dict[str, Any]]:
    """Per recommended item: times e-mailed, clicks (no scanners), purchases and revenue within the window.

    A purchase counts for an item when the e-mailed customer bought that item within
    ``ATTRIBUTION_DAYS`` after the send (clicked or not), which is what "the recommendation sold" means
    to a merchandiser; the click-attributed figures are in the funnel.
    """
    window = timedelta(days=campaigns_settings().ATTRIBUTION_DAYS)
    sent = list(Recipient.objects.filter(campaign=campaign, state=Recipient.State.SENT)
                .values_list("customer_id", "sent_at", "items"))
    recommended: dict[int, int] = defaultdict(int)
    by_customer: dict[int, list[tuple]] = defaultdict(list)
    for customer_id, sent_at, items in sent:
        for entry in items or []:
            recommended[entry["item_id"]] += 1
            by_customer[customer_id].append((entry["item_id"], sent_at))
    if not recommended:
        return []
    clicks = dict(Click.objects.filter(recipient__campaign=campaign, flagged=False).order_by().values("item_id")
                  .annotate(n=Count("id")).values_list("item_id", "n"))
    purchases: dict[int, int] = defaultdict(int)
    revenue: dict[int, Decimal] = defaultdict(Decimal)
    customer_ids = list(by_customer)
    for start in range(0, len(customer_ids), 2000):
        chunk = customer_ids[start:start + 2000]
        rows = Interaction.objects.filter(customer_id__in=chunk, kind=Interaction.Kind.PURCHASE,
                                          item_id__in=list(recommended)).values_list(
            "customer_id", "item_id", "occurred_at", "value", "quantity", "item__price")
        for customer_id, item_id, occurred_at, value, quantity, price in rows:
            for sent_item, sent_at in by_customer[customer_id]:
                if sent_item == item_id and sent_at and sent_at <= occurred_at <= sent_at + window:
                    purchases[item_id] += 1
                    amount = Decimal(str(value)) if value is not None else (price or Decimal(0)) * quantity
                    revenue[item_id] += amount
                    break
    top = sorted(recommended, key=lambda i: (-purchases[i], -clicks.get(i, 0), -recommended[i], i))[:limit]
    items = Item.objects.in_bulk(top)
    return [{
        "item": items.get(i), "sku": items[i].sku if i in items else str(i),
        "title": items[i].title if i in items else "(deleted item)",
        "recommended": recommended[i], "clicks": clicks.get(i, 0), "purchases": purchases[i],
        "revenue": money(revenue[i]), "click_rate": percent(clicks.get(i, 0) / recommended[i]),
    } for i in top]


def item_performance_html(rows: list[dict]) -> str:
    """The rows of ``item_performance`` as a chart (the top 10) and a table."""
    table = data_table_html(
        ["item", "e-mailed", "clicks", "click rate", "bought", "revenue"],
        ((f"{r['title']} ({r['sku']})", r["recommended"], r["clicks"], r["click_rate"], r["purchases"], r["revenue"])
         for r in rows),
    )
    return format_html("{}{}", chart_html(item_performance_chart(rows), "chart-items", height=320), table)


def item_performance_chart(rows: list[dict]) -> dict | None:
    if not rows:
        return None
    rows = rows[:10]
    labels = [r["title"][:40] for r in rows]
    return chart("bar", labels, [
        dataset("times e-mailed", [r["recommended"] for r in rows], 5),
        dataset("clicks", [r["clicks"] for r in rows], 1),
        dataset("purchases", [r["purchases"] for r in rows], 2),
    ], horizontal=True)


def last_sent_campaign() -> Campaign | None:
    return Campaign.objects.filter(sent_at__isnull=False).order_by("-sent_at", "-id").first()


def next_scheduled(limit: int = 5) -> list[dict[str, Any]]:
    """Campaigns that will go out: a one-off send time in the future, or an enabled recurring schedule."""
    rows = []
    one_off = Campaign.objects.filter(send_at__gte=timezone.now()).exclude(
        status__in=[Campaign.Status.SENT, Campaign.Status.CANCELLED]).order_by("send_at")[:limit]
    for campaign in one_off:
        rows.append({"campaign": campaign, "when": campaign.send_at, "schedule": "once"})
    recurring = Campaign.objects.filter(periodic_task__enabled=True).select_related(
        "periodic_task__crontab")[:limit]
    for campaign in recurring:
        task = campaign.periodic_task
        rows.append({"campaign": campaign, "when": task.last_run_at,
                     "schedule": f"recurring: {task.crontab.human_readable}" if task.crontab_id else "recurring"})
    return rows[:limit]


def revenue_attributed() -> Decimal:
    from django.db.models import Sum

    return Recipient.objects.aggregate(total=Sum("revenue"))["total"] or Decimal(0)


def recipient_counts(*, campaign: Campaign) -> dict[str, int]:
    """What a send would do, for the confirmation page: counts of the latest run by state."""
    agg = Recipient.objects.filter(campaign=campaign, run=campaign.current_run).aggregate(
        pending=Count("id", filter=Q(state=Recipient.State.PENDING)),
        sent=Count("id", filter=Q(state=Recipient.State.SENT)),
        holdout=Count("id", filter=Q(state=Recipient.State.HOLDOUT)),
        skipped=Count("id", filter=Q(state=Recipient.State.SKIPPED)),
        in_doubt=Count("id", filter=Q(state=Recipient.State.SENDING)),
        failed=Count("id", filter=Q(state=Recipient.State.FAILED)),
    )
    return agg


def customer_label(customer) -> str:
    """"Anna Schmidt <anna@example.com>": a name alone is ambiguous, an id means nothing to a marketer."""
    name = customer.full_name or customer.external_id
    return f"{name} <{customer.email}>" if customer.email else name


def short_datetime(moment) -> str:
    """"30 Nov 14:05" in the site's time zone; "n/a" for none."""
    return timezone.localtime(moment).strftime("%d %b %H:%M") if moment else "n/a"


def recipient_items_html(items: list[dict] | None) -> str:
    """The items chosen for one recipient, as stored at build time: rank, item, price and why."""
    if not items:
        return "none"
    rows = format_html_join("", "<tr><td>{}</td><th>{}</th><td>{}</td><td>{}</td></tr>", (
        (entry.get("rank", n), entry.get("title") or entry.get("sku") or f"item {entry.get('item_id')}",
         f"{entry['price']} {entry.get('currency', '')}".strip() if entry.get("price") else "n/a",
         (entry.get("reason") or "").capitalize() or "n/a")
        for n, entry in enumerate(items, start=1)))
    return format_html('<table class="tailored-metrics"><tr><th>#</th><th>item</th><th>price</th><th>why</th>'
                       "</tr>{}</table>", rows)


PREVIEW_LINK = "#preview-link-disabled"


def preview_without_tracking(rendered, *, recipient: Recipient):
    """The rendered e-mail with its tracked links and open pixel defused.

    Looking at a preview in the admin must not record an open for the customer (the pixel would load)
    nor a click or an unsubscribe (a link followed inside the frame).
    """
    urls = [open_url(recipient_id=recipient.pk), unsubscribe_url(recipient_id=recipient.pk)]
    urls += [click_url(recipient_id=recipient.pk, item_id=entry["item_id"]) for entry in recipient.items or []]
    html, text = str(rendered.html), str(rendered.text)
    for url in urls:
        for form in {url, escape(url)}:
            html = html.replace(form, PREVIEW_LINK)
            text = text.replace(form, PREVIEW_LINK)
    # Any other tracked link a custom template builds (same prefix) is defused too.
    prefix = re.escape(open_url(recipient_id=recipient.pk).split("/o/")[0] + "/")  # the tracking root, e.g. /t/
    pattern = re.compile(prefix + r"[^\s\"'<>]*")
    return replace(rendered, html=pattern.sub(PREVIEW_LINK, html), text=pattern.sub(PREVIEW_LINK, text))

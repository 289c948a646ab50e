"""Campaign results: counts, click-attributed conversions, and treated-vs-holdout uplift with a 95% CI.

Two conversion notions:

- ``converted`` / ``revenue`` (attribution): a purchase of an item the recipient clicked (not a
  scanner click), within ``ATTRIBUTION_DAYS`` after that click.
- uplift: the share of customers who purchased any of *their recommended items* within
  ``ATTRIBUTION_DAYS`` after the send, treated (sent) vs holdout. A holdout customer's clock starts
  at the run's first send (or the build, if nothing was sent), so both groups are measured alike.

The interval is the normal approximation for a difference of two proportions:
``d = p_t - p_h``, ``se = sqrt(p_t(1-p_t)/n_t + p_h(1-p_h)/n_h)``, ``d ± 1.96 se``.
"""
from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, Min, Q, Sum

from campaigns.conf import campaigns_settings
from campaigns.models import Campaign, Click, Recipient
from crm.models import Interaction

Z_95 = 1.959963984540054
CHUNK = 5000


def uplift_interval(*, treated_successes: int, treated_n: int, control_successes: int, control_n: int,
                    z: float = Z_95) -> dict | None:
    """Difference of proportions (treated - control) with a normal-approximation interval; None if a group is empty."""
    if treated_n <= 0 or control_n <= 0:
        return None
    p_t, p_c = treated_successes / treated_n, control_successes / control_n
    se = math.sqrt(p_t * (1 - p_t) / treated_n + p_c * (1 - p_c) / control_n)
    diff = p_t - p_c
    return {
        "treated_rate": p_t,
        "control_rate": p_c,
        "uplift": diff,
        "ci_low": diff - z * se,
        "ci_high": diff + z * se,
        "significant": bool(se and abs(diff) > z * se),
    }


def _purchase_value(value: float | None, quantity: int, price: Decimal | None) -> Decimal:
    if value is not None:
        return Decimal(str(value))
    return (price or Decimal(0)) * quantity


def campaign_conversions_update(*, campaign: Campaign) -> int:
    """Recompute ``converted_at`` and ``revenue`` of the campaign's clicked recipients. Returns converted count."""
    window = timedelta(days=campaigns_settings().ATTRIBUTION_DAYS)
    clicks = (
        Click.objects.filter(recipient__campaign=campaign, flagged=False)
        .order_by()
        .values_list("recipient_id", "recipient__customer_id", "item_id", "clicked_at")
    )
    by_customer: dict[int, list[tuple]] = defaultdict(list)
    for recipient_id, customer_id, item_id, clicked_at in clicks:
        by_customer[customer_id].append((recipient_id, item_id, clicked_at))
    outcome: dict[int, tuple] = {}
    customer_ids = list(by_customer)
    for start in range(0, len(customer_ids), CHUNK):
        chunk = customer_ids[start:start + CHUNK]
        purchases = defaultdict(list)
        rows = Interaction.objects.filter(customer_id__in=chunk, kind=Interaction.Kind.PURCHASE).order_by(
            "occurred_at").values_list("customer_id", "item_id", "occurred_at", "value", "quantity", "item__price")
        for customer_id, item_id, occurred_at, value, quantity, price in rows:
            purchases[(customer_id, item_id)].append((occurred_at, _purchase_value(value, quantity, price)))
        for customer_id in chunk:
            for recipient_id, item_id, clicked_at in by_customer[customer_id]:
                for occurred_at, amount in purchases.get((customer_id, item_id), []):
                    if clicked_at <= occurred_at <= clicked_at + window:
                        first, revenue = outcome.get(recipient_id, (occurred_at, Decimal(0)))
                        outcome[recipient_id] = (min(first, occurred_at), revenue + amount)
    Recipient.objects.filter(campaign=campaign).exclude(pk__in=list(outcome)).filter(
        converted_at__isnull=False).update(converted_at=None, revenue=0)
    changed, newly = [], []
    for recipient in Recipient.objects.filter(pk__in=list(outcome)).only("pk", "converted_at", "revenue"):
        if recipient.converted_at is None:
            newly.append(recipient.pk)
        recipient.converted_at, recipient.revenue = outcome[recipient.pk]
        changed.append(recipient)
    Recipient.objects.bulk_update(changed, ["converted_at", "revenue"], batch_size=1000)
    if newly:
        from campaigns.services.webhooks_out import conversions_emit

        conversions_emit(recipient_ids=newly)
    return len(changed)


def _recommended_purchasers(campaign: Campaign, run: int | None) -> tuple[int, int, int, int]:
    """(treated purchasers, treated n, holdout purchasers, holdout n) for the uplift."""
    window = timedelta(days=campaigns_settings().ATTRIBUTION_DAYS)
    recipients = Recipient.objects.filter(campaign=campaign).filter(
        Q(state=Recipient.State.SENT) | Q(state=Recipient.State.HOLDOUT))
    if run is not None:
        recipients = recipients.filter(run=run)
    run_start = dict(
        Recipient.objects.filter(campaign=campaign, sent_at__isnull=False).order_by().values("run")
        .annotate(start=Min("sent_at")).values_list("run", "start")
    )
    counts = {"treated": [0, 0], "holdout": [0, 0]}
    rows = recipients.order_by("pk").values_list("customer_id", "items", "sent_at", "is_holdout", "run", "created_at")
    batch = []
    for row in rows.iterator(chunk_size=CHUNK):
        batch.append(row)
        if len(batch) == CHUNK:
            _count_purchasers(batch, run_start, window, counts)
            batch = []
    if batch:
        _count_purchasers(batch, run_start, window, counts)
    return counts["treated"][0], counts["treated"][1], counts["holdout"][0], counts["holdout"][1]


def _count_purchasers(batch, run_start, window, counts) -> None:
    purchases = defaultdict(list)
    rows = Interaction.objects.filter(
        customer_id__in=[r[0] for r in batch], kind=Interaction.Kind.PURCHASE
    ).order_by().values_list("customer_id", "item_id", "occurred_at")
    for customer_id, item_id, occurred_at in rows:
        purchases[customer_id].append((item_id, occurred_at))
    for customer_id, items, sent_at, is_holdout, run, created_at in batch:
        start = (run_start.get(run) or created_at) if is_holdout else sent_at
        recommended = {entry["item_id"] for entry in items or []}
        bought = any(
            item_id in recommended and start <= occurred_at <= start + window
            for item_id, occurred_at in purchases.get(customer_id, [])
        )
        group = counts["holdout" if is_holdout else "treated"]
        group[0] += int(bought)
        group[1] += 1


def campaign_results(*, campaign: Campaign, run: int | None = None, refresh: bool = True) -> dict:
    """Every number of the results panel and the API; ``run`` None: all runs together."""
    if refresh:
        campaign_conversions_update(campaign=campaign)
    recipients = Recipient.objects.filter(campaign=campaign)
    if run is not None:
        recipients = recipients.filter(run=run)
    states = dict(recipients.order_by().values("state").annotate(n=Count("id")).values_list("state", "n"))
    skipped = dict(
        recipients.filter(state=Recipient.State.SKIPPED).order_by().values("skip_reason")
        .annotate(n=Count("id")).values_list("skip_reason", "n")
    )
    sent = recipients.filter(state=Recipient.State.SENT)
    agg = sent.aggregate(
        opened=Count("id", filter=Q(opened_at__isnull=False)),
        clicked=Count("id", filter=Q(clicked_at__isnull=False)),
        converted=Count("id", filter=Q(converted_at__isnull=False)),
        flagged=Count("id", filter=Q(click_flagged=True)),
        unsubscribed=Count("id", filter=Q(unsubscribed_at__isnull=False)),
        revenue=Sum("revenue"),
        # From provider webhooks (campaigns/services/deliverability.py); machine opens are no opens.
        delivered=Count("id", filter=Q(delivery__delivered_at__isnull=False)),
        bounced=Count("id", filter=Q(delivery__status="bounced")),
        complained=Count("id", filter=Q(delivery__complained_at__isnull=False)),
        machine_opens=Count("id", filter=Q(delivery__machine_opened_at__isnull=False, opened_at__isnull=True)),
    )
    n_sent = states.get(Recipient.State.SENT, 0)
    n_holdout = states.get(Recipient.State.HOLDOUT, 0)
    t_buy, t_n, h_buy, h_n = _recommended_purchasers(campaign, run)
    return {
        "campaign_id": campaign.pk,
        "run": run,
        "recipients": sum(states.values()),
        "holdout": n_holdout,
        "skipped": sum(skipped.values()),
        "skipped_by_reason": skipped,
        "pending": states.get(Recipient.State.PENDING, 0),
        "sent": n_sent,
        "failed": states.get(Recipient.State.FAILED, 0),
        "in_doubt": states.get(Recipient.State.SENDING, 0),
        "opened": agg["opened"],
        "clicked": agg["clicked"],
        "scanner_flagged": agg["flagged"],
        "converted": agg["converted"],
        "unsubscribed": agg["unsubscribed"],
        "delivered": agg["delivered"],
        "bounced": agg["bounced"],
        "complained": agg["complained"],
        "machine_opens": agg["machine_opens"],
        "revenue": f"{Decimal(agg['revenue'] or 0):.2f}",
        "open_rate": agg["opened"] / n_sent if n_sent else None,
        "click_rate": agg["clicked"] / n_sent if n_sent else None,
        "conversion_rate": agg["converted"] / n_sent if n_sent else None,
        "attribution_days": campaigns_settings().ATTRIBUTION_DAYS,
        # Holdout customers get no e-mail, so their click rate is 0 by construction.
        "click_uplift": uplift_interval(treated_successes=agg["clicked"], treated_n=n_sent,
                                        control_successes=0, control_n=n_holdout),
        "purchase_uplift": uplift_interval(treated_successes=t_buy, treated_n=t_n,
                                           control_successes=h_buy, control_n=h_n),
        "treated_purchasers": t_buy,
        "holdout_purchasers": h_buy,
    }

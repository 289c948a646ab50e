"""Building a campaign run: one Recipient per audience customer, with the items chosen for them.

Customers are read in primary-key chunks; per chunk, a few bulk queries decide consent, frequency
caps, rotation and the recommendations, then one bulk insert (and one bulk update on a rebuild)
writes the rows. Re-running a build never duplicates recipients: (campaign, run, customer) is
unique, and rows that already started sending are left untouched.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from campaigns.conf import campaigns_settings
from campaigns.models import Campaign, Recipient
from campaigns.selectors import (
    CustomerRef,
    allowed_items,
    campaign_audience,
    campaign_item_filters,
    in_values,
    recent_send_counts,
    recently_sent_item_ids,
    recommendation_snapshots_for_customers,
)
from campaigns.services.deliverability import suppressed_emails

logger = logging.getLogger(__name__)

CAMPAIGN_BUSY = "Campaign {id} is {status}: wait until it finishes (or pause it) before building."
REBUILDABLE_STATES = (Recipient.State.PENDING, Recipient.State.SKIPPED, Recipient.State.HOLDOUT)


class CampaignStateError(ValueError):
    """The campaign is not in a state that allows the operation; the message says why."""


@dataclass
class BuildResult:
    campaign_id: int
    run: int
    customers: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    seconds: float = 0.0
    by_state: dict[str, int] = field(default_factory=dict)


def needs_opt_in(campaign: Campaign) -> bool:
    """E-mail is never sent without opt-in, whatever ``consent_required`` says; the flag only
    decides for offer lists (exported, not mailed by Tailored)."""
    return campaign.channel == Campaign.Channel.EMAIL or campaign.consent_required


def recipient_skip_reason(
    campaign: Campaign, *, customer_id: int, email: str, opt_in: bool, unsubscribed_at, sends: dict[int, int]
) -> str:
    """Why this customer gets nothing from ``campaign`` ("" = eligible). The one rule, checked at build
    time and again at send time (consent and caps change in between)."""
    if unsubscribed_at is not None:
        return Recipient.SkipReason.UNSUBSCRIBED
    if needs_opt_in(campaign) and not opt_in:
        return Recipient.SkipReason.NO_CONSENT
    if campaign.channel == Campaign.Channel.EMAIL:
        if not email:
            return Recipient.SkipReason.NO_EMAIL
        if campaign.frequency_cap_count and sends.get(customer_id, 0) >= campaign.frequency_cap_count:
            return Recipient.SkipReason.FREQUENCY_CAP
    return ""


def _skip_reason(campaign: Campaign, row: tuple, sends: dict[int, int]) -> str:
    return recipient_skip_reason(
        campaign, customer_id=row[0], email=row[1], opt_in=row[2], unsubscribed_at=row[3], sends=sends
    )


class NewRecipient(NamedTuple):
    """A recipient row about to be written: a tuple, not a model instance (100,000 of them per build)."""

    customer_id: int
    email: str
    items: list
    is_holdout: bool
    state: str
    skip_reason: str


def _chunk_recipients(campaign: Campaign, run: int, rows: list[tuple], items) -> list[NewRecipient]:
    ids = [row[0] for row in rows]
    sends = {}
    if campaign.channel == Campaign.Channel.EMAIL and campaign.frequency_cap_count:
        sends = recent_send_counts(customer_ids=ids, days=campaign.frequency_cap_days)
    reasons = {row[0]: _skip_reason(campaign, row, sends) for row in rows}
    if campaign.channel == Campaign.Channel.EMAIL:  # hard bounces and complaints are never mailed again
        suppressed = suppressed_emails(emails=[row[1] for row in rows if not reasons[row[0]]])
        reasons.update({row[0]: Recipient.SkipReason.SUPPRESSED for row in rows
                        if not reasons[row[0]] and row[1] and row[1].lower() in suppressed})
    eligible = [row for row in rows if not reasons[row[0]]]
    customers = [CustomerRef(pk=row[0], country=row[4]) for row in eligible]
    demote = recently_sent_item_ids(customer_ids=[c.pk for c in customers], exclude_campaign_run=(campaign.pk, run))
    snapshots = recommendation_snapshots_for_customers(
        customers=customers, limit=campaign.n_items, filters=campaign_item_filters(campaign=campaign),
        demote_item_ids=demote, max_per_category=campaign.max_per_category, items=items,
        list_name=campaign.recommendation_list,
    ) if customers else {}
    recipients = []
    for row in rows:
        customer_id, email = row[0], row[1]
        reason = reasons[customer_id]
        chosen = snapshots.get(customer_id, [])
        if not reason and not chosen:
            reason = Recipient.SkipReason.NO_ITEMS
        holdout = not reason and campaign.is_holdout(customer_id)
        if reason:
            state = Recipient.State.SKIPPED
        elif holdout:
            state = Recipient.State.HOLDOUT
        else:
            state = Recipient.State.PENDING
        recipients.append(NewRecipient(customer_id, email or "", chosen, holdout, state, reason))
    return recipients


def _write_chunk(campaign: Campaign, run: int, recipients: list[NewRecipient], result: BuildResult, *,
                 first_build: bool) -> None:
    """Insert new rows; replace rows not yet sent (never sent: nothing refers to them yet).

    ``first_build``: the run had no rows when the build started, so there is nothing to look up.
    """
    existing = {} if first_build else {
        customer_id: (pk, state)
        for pk, customer_id, state in Recipient.objects.filter(
            in_values("customer_id", [r.customer_id for r in recipients]), campaign=campaign, run=run
        ).values_list("pk", "customer_id", "state")
    }
    fresh, replaced = [], []
    for recipient in recipients:
        if recipient.customer_id not in existing:
            fresh.append(recipient)
        elif existing[recipient.customer_id][1] in REBUILDABLE_STATES:
            replaced.append(existing[recipient.customer_id][0])
            fresh.append(recipient)
        else:
            result.unchanged += 1  # already sending/sent/failed: the snapshot is history now
    with transaction.atomic():
        if replaced:
            Recipient.objects.filter(in_values("id", replaced)).delete()
        _insert(campaign, run, fresh)
    result.created += len(fresh) - len(replaced)
    result.updated += len(replaced)


COPY_COLUMNS = (
    "campaign_id", "run", "customer_id", "email", "items", "is_holdout", "state", "skip_reason", "message_id",
    "attempts", "error", "click_flagged", "revenue", "created_at", "updated_at",
)


def _insert(campaign: Campaign, run: int, recipients: list[NewRecipient]) -> None:
    """PostgreSQL: COPY (several times faster than INSERT for JSON rows); elsewhere bulk_create."""
    if not recipients:
        return
    if connection.vendor != "postgresql":
        Recipient.objects.bulk_create([
            Recipient(campaign_id=campaign.pk, run=run, customer_id=r.customer_id, email=r.email, items=r.items,
                      is_holdout=r.is_holdout, state=r.state, skip_reason=r.skip_reason)
            for r in recipients
        ], batch_size=1000, ignore_conflicts=True)
        return
    now = timezone.now()
    dumps = json.JSONEncoder(check_circular=False, separators=(",", ":")).encode
    sql = f"COPY {Recipient._meta.db_table} ({', '.join(COPY_COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for r in recipients:
            copy.write_row((
                campaign.pk, run, r.customer_id, r.email, dumps(r.items), r.is_holdout, r.state,
                r.skip_reason, "", 0, "", False, 0, now, now,
            ))


def campaign_build(*, campaign: Campaign, run: int | None = None) -> BuildResult:
    """Build (or rebuild) a run of ``campaign``; ``run`` defaults to the current run (1 at first)."""
    run = run or max(campaign.current_run, 1)
    claimed = Campaign.objects.filter(pk=campaign.pk).exclude(
        status__in=[Campaign.Status.SENDING, Campaign.Status.BUILDING]
    ).update(status=Campaign.Status.BUILDING, current_run=run)
    if not claimed:
        campaign.refresh_from_db()
        raise CampaignStateError(CAMPAIGN_BUSY.format(id=campaign.pk, status=campaign.status))
    started = time.monotonic()
    result = BuildResult(campaign_id=campaign.pk, run=run)
    try:
        items = allowed_items(filters=campaign_item_filters(campaign=campaign))
        audience = campaign_audience(campaign=campaign).order_by("pk")
        chunk = campaigns_settings().BUILD_CHUNK_SIZE
        first_build = not Recipient.objects.filter(campaign=campaign, run=run).exists()
        last = 0
        while True:
            rows = list(
                audience.filter(pk__gt=last).values_list(
                    "pk", "email", "email_opt_in", "unsubscribed_at", "country"
                )[:chunk]
            )
            if not rows:
                break
            last = rows[-1][0]
            result.customers += len(rows)
            _write_chunk(campaign, run, _chunk_recipients(campaign, run, rows, items), result,
                         first_build=first_build)
    except Exception:
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.FAILED)
        raise
    now = timezone.now()
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.READY, built_at=now)
    campaign.refresh_from_db()
    result.seconds = round(time.monotonic() - started, 3)
    result.by_state = recipient_state_counts(campaign=campaign, run=run)
    logger.info("campaign %s run %s built: %s", campaign.pk, run, result)
    return result


def recipient_state_counts(*, campaign: Campaign, run: int) -> dict[str, int]:
    from django.db.models import Count

    rows = (
        Recipient.objects.filter(campaign=campaign, run=run)
        .order_by()
        .values("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    return dict(rows)

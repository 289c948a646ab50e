"""Campaigns, their per-customer recipients (snapshot + send state machine) and tracked clicks."""
from __future__ import annotations

import hashlib

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from campaigns.templating import validate_html_template, validate_subject_template, validate_text_template
from crm.choices import ValueLabelChoices
from crm.models import TimeStampedModel
from recommendations.models import Recommendation

# Bounds that keep date arithmetic and integer columns sane (10 years; a cap no one would set).
MAX_DAYS = 3650
MAX_CAP_COUNT = 1000


class Campaign(TimeStampedModel):
    class Channel(ValueLabelChoices):
        EMAIL = "email", "e-mail"
        OFFER_LIST = "offer_list", "offer list (export)"

    class Status(ValueLabelChoices):
        DRAFT = "draft"
        SCHEDULED = "scheduled"
        BUILDING = "building"
        READY = "ready", "built, ready to send"
        SENDING = "sending"
        SENT = "sent"
        PAUSED = "paused"
        CANCELLED = "cancelled"
        FAILED = "failed"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    audience = models.ForeignKey(
        "crm.Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns",
        help_text="Empty: every customer.",
    )
    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.EMAIL)
    subject_template = models.TextField(
        blank=True, validators=[validate_subject_template],
        help_text="Sandboxed Jinja2 template (see docs/campaigns.md); empty: templates/campaigns/email/subject.txt.",
    )
    html_template = models.TextField(
        blank=True, validators=[validate_html_template],
        help_text="Sandboxed Jinja2 template, HTML-escaped; empty: templates/campaigns/email/body.html.",
    )
    text_template = models.TextField(
        blank=True, validators=[validate_text_template],
        help_text="Sandboxed Jinja2 template; empty: templates/campaigns/email/body.txt.",
    )
    n_items = models.PositiveSmallIntegerField(
        "number of items", default=5, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )
    filter_category = models.CharField(max_length=200, blank=True)
    filter_min_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    filter_max_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    max_per_category = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Diversity cap; empty: none.")
    recommendation_list = models.CharField(
        max_length=20, choices=Recommendation.List.choices, default=Recommendation.List.DISCOVER,
        help_text="Which stored list fills the item block: discover (products the customer has not bought) "
        "or buy again (products they bought before, by when they will need them again).",
    )
    send_at = models.DateTimeField(null=True, blank=True, help_text="One-off schedule: build and send at this time.")
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="campaign",
        help_text="Recurring schedule (a crontab); each run rebuilds from the latest scores.",
    )
    holdout_share = models.FloatField(
        default=0.1, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of eligible customers kept out (deterministic per campaign and customer).",
    )
    frequency_cap_count = models.PositiveSmallIntegerField(
        default=3, validators=[MaxValueValidator(MAX_CAP_COUNT)],
        help_text="At most this many campaign e-mails per customer per window (0: no cap).",
    )
    frequency_cap_days = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(MAX_DAYS)]
    )
    consent_required = models.BooleanField(
        default=True,
        help_text="Offer lists only. E-mail campaigns never mail a customer without opt-in, whatever this says.",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True)
    current_run = models.PositiveIntegerField(default=0, help_text="The latest built run (recurring campaigns).")
    built_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When the latest run finished sending.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(holdout_share__gte=0) & Q(holdout_share__lte=1), name="campaign_holdout_share_range"
            ),
            models.CheckConstraint(condition=Q(n_items__gte=1), name="campaign_n_items_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if (
            self.filter_min_price is not None
            and self.filter_max_price is not None
            and self.filter_min_price > self.filter_max_price
        ):
            raise ValidationError({"filter_max_price": "The maximum price must not be below the minimum price."})

    @property
    def is_recurring(self) -> bool:
        return self.periodic_task_id is not None

    def is_holdout(self, customer_id: int) -> bool:
        """Deterministic: hash(campaign id, customer id) mapped to [0, 1) is below the holdout share."""
        return holdout_fraction(self.pk, customer_id) < self.holdout_share


def holdout_fraction(campaign_id: int, customer_id: int) -> float:
    digest = hashlib.blake2b(f"{campaign_id}:{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class RecipientQuerySet(models.QuerySet):
    def in_doubt(self) -> RecipientQuerySet:
        """Claimed for sending but never confirmed: the SMTP call may or may not have delivered."""
        return self.filter(state=Recipient.State.SENDING)

    def treated(self) -> RecipientQuerySet:
        return self.filter(state=Recipient.State.SENT)


class Recipient(models.Model):
    """One customer in one run of a campaign: the items chosen for them and the send state machine.

    ``pending -> sending -> sent | failed``; ``sending`` is committed before the SMTP call, so a
    recipient left in ``sending`` is "in doubt" and is never re-sent automatically.
    """

    class State(ValueLabelChoices):
        PENDING = "pending"
        SENDING = "sending", "sending (in doubt if it stays)"
        SENT = "sent"
        FAILED = "failed"
        SKIPPED = "skipped"
        HOLDOUT = "holdout", "holdout (not sent)"

    class SkipReason(ValueLabelChoices):
        UNSUBSCRIBED = "unsubscribed"
        NO_CONSENT = "no_consent", "no e-mail consent"
        NO_EMAIL = "no_email", "no e-mail address"
        FREQUENCY_CAP = "frequency_cap", "frequency cap reached"
        NO_ITEMS = "no_items", "no items to recommend"
        SUPPRESSED = "suppressed", "address suppressed (bounce or complaint)"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    run = models.PositiveIntegerField(default=1)
    customer = models.ForeignKey("crm.Customer", on_delete=models.CASCADE, related_name="campaign_recipients")
    email = models.EmailField(blank=True, help_text="The address at build time.")
    items = models.JSONField(default=list, blank=True, help_text="Snapshot of the chosen items, best first.")
    is_holdout = models.BooleanField(default=False)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    skip_reason = models.CharField(max_length=20, choices=SkipReason.choices, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True, help_text="First click not flagged as a scanner.")
    click_flagged = models.BooleanField(default=False, help_text="A click looked like a link scanner.")
    converted_at = models.DateTimeField(null=True, blank=True)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RecipientQuerySet.as_manager()

    class Meta:
        ordering = ["campaign_id", "run", "id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "run", "customer"], name="recipient_unique_per_run"),
            models.CheckConstraint(
                condition=~Q(state="skipped") | ~Q(skip_reason=""), name="recipient_skipped_has_reason"
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "run", "state"], name="recipient_campaign_state"),
            models.Index(fields=["customer", "sent_at"], name="recipient_customer_sent"),
        ]

    def __str__(self) -> str:
        who = self.email or f"customer {self.customer_id}"
        return f"{who} (run {self.run}, {self.get_state_display()})"

    @property
    def item_ids(self) -> list[int]:
        return [entry["item_id"] for entry in self.items]


class Click(models.Model):
    """A click on an item link of a recipient's e-mail (one row per recipient and item)."""

    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="clicks")
    item = models.ForeignKey("crm.Item", on_delete=models.CASCADE, related_name="+")
    clicked_at = models.DateTimeField(default=timezone.now)
    count = models.PositiveIntegerField(default=1)
    user_agent = models.CharField(max_length=500, blank=True)
    flagged = models.BooleanField(default=False, help_text="Looks like a link scanner: excluded from results.")
    flag_reason = models.CharField(max_length=100, blank=True)
    interaction = models.ForeignKey(
        "crm.Interaction", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["recipient_id", "clicked_at", "id"]
        constraints = [models.UniqueConstraint(fields=["recipient", "item"], name="click_unique_per_item")]

    def __str__(self) -> str:
        return f"click {self.item_id} by recipient {self.recipient_id}"


from campaigns.delivery_models import (  # noqa: E402,F401  (registered with the campaigns app)
    DeliveryEvent,
    LocalSendPlan,
    RecipientDelivery,
    SendWave,
    Suppression,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)

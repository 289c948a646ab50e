"""Deliverability models: what providers told us about each message, the suppression list,
local send waves and outbound webhooks. Imported at the end of ``campaigns.models``."""
from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from crm.choices import ValueLabelChoices


class RecipientDelivery(models.Model):
    """The provider's view of one sent recipient: its message id and the latest delivery status."""

    class Status(ValueLabelChoices):
        ACCEPTED = "accepted", "accepted by the provider"
        DELIVERED = "delivered"
        DEFERRED = "deferred", "deferred (provider retrying)"
        SOFT_BOUNCED = "soft_bounced", "soft bounce"
        BOUNCED = "bounced", "hard bounce"
        COMPLAINED = "complained", "spam complaint"
        REJECTED = "rejected", "rejected by the provider"

    recipient = models.OneToOneField("campaigns.Recipient", on_delete=models.CASCADE, related_name="delivery")
    esp = models.CharField("provider", max_length=40, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True, db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACCEPTED)
    status_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    complained_at = models.DateTimeField(null=True, blank=True)
    soft_bounces = models.PositiveSmallIntegerField(default=0)
    machine_opened_at = models.DateTimeField(
        null=True, blank=True, help_text="An open by a machine (e.g. Apple Mail Privacy Protection): not an open."
    )
    detail = models.TextField(blank=True, help_text="The provider's last bounce/deferral text.")

    class Meta:
        verbose_name_plural = "recipient deliveries"

    def __str__(self) -> str:
        return f"{self.recipient_id}: {self.status}"


class DeliveryEvent(models.Model):
    """One tracking event received from a provider's webhook; (esp, event_id) makes replays no-ops."""

    esp = models.CharField("provider", max_length=40)
    event_id = models.CharField(max_length=255, help_text="The provider's event id (or a hash of the event).")
    event_type = models.CharField(max_length=30)
    recipient = models.ForeignKey(
        "campaigns.Recipient", null=True, blank=True, on_delete=models.SET_NULL, related_name="delivery_events"
    )
    email = models.CharField(max_length=254, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    reject_reason = models.CharField(max_length=30, blank=True)
    bounce_kind = models.CharField(max_length=10, blank=True, help_text="hard / soft for bounces.")
    machine = models.BooleanField(default=False, help_text="An open or click by a machine, not a person.")
    outcome = models.CharField(max_length=200, blank=True, help_text="What the event changed.")
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["esp", "event_id"], name="delivery_event_unique")]

    def __str__(self) -> str:
        return f"{self.esp} {self.event_type} {self.email}"


class SuppressionQuerySet(models.QuerySet):
    def active(self) -> SuppressionQuerySet:
        return self.filter(lifted_at__isnull=True)


class Suppression(models.Model):
    """An address no campaign may mail (hard bounce, complaint, or by hand) until someone lifts it."""

    class Reason(ValueLabelChoices):
        HARD_BOUNCE = "hard_bounce", "hard bounce"
        COMPLAINT = "complaint", "spam complaint"
        SOFT_BOUNCES = "soft_bounces", "repeated soft bounces"
        MANUAL = "manual", "added by hand"

    email = models.CharField(max_length=254, db_index=True, help_text="Lower-cased.")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detail = models.TextField(blank=True)
    esp = models.CharField("provider", max_length=40, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.CharField(max_length=150, blank=True)
    lift_note = models.TextField(blank=True)

    objects = SuppressionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["email"], condition=Q(lifted_at__isnull=True), name="suppression_one_active_per_email"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_reason_display()})"


class SendWave(models.Model):
    """Part of a "local time" campaign run: the recipients in some time zones, due at one UTC instant."""

    class Status(ValueLabelChoices):
        PLANNED = "planned"
        SENT = "sent"

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="send_waves")
    send_at = models.DateTimeField(db_index=True)
    time_zones = models.JSONField(default=list, help_text="IANA time zone names in this wave.")
    customers = models.PositiveIntegerField(default=0, help_text="Audience customers in these zones when planned.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLANNED)
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign_id", "send_at"]
        constraints = [models.UniqueConstraint(fields=["campaign", "send_at"], name="send_wave_unique_instant")]

    def __str__(self) -> str:
        return f"campaign {self.campaign_id} wave @ {self.send_at:%Y-%m-%d %H:%M}Z"


class LocalSendPlan(models.Model):
    """ "Send at 09:00 in each recipient's time zone" on ``day`` (waves are planned from it)."""

    campaign = models.OneToOneField("campaigns.Campaign", on_delete=models.CASCADE, related_name="local_send_plan")
    day = models.DateField()
    local_time = models.TimeField()
    built_run = models.PositiveIntegerField(null=True, blank=True, help_text="The run the first wave built.")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"campaign {self.campaign_id} at {self.local_time:%H:%M} local on {self.day}"


class WebhookSubscription(models.Model):
    """An integration's URL that receives signed events (see campaigns/services/webhooks_out.py)."""

    class EventType(ValueLabelChoices):
        RECOMMENDATIONS_REFRESHED = "recommendations.refreshed", "recommendations refreshed for a customer"
        CAMPAIGN_SENT = "campaign.sent", "campaign sent"
        RECIPIENT_BOUNCED = "recipient.bounced", "recipient bounced"
        RECIPIENT_COMPLAINED = "recipient.complained", "recipient complained"
        RECIPIENT_UNSUBSCRIBED = "recipient.unsubscribed", "recipient unsubscribed"
        CONVERSION_ATTRIBUTED = "conversion.attributed", "conversion attributed"

    name = models.CharField(max_length=200)
    url = models.URLField(max_length=1000, help_text="http(s) only.")
    secret = models.CharField(max_length=200, help_text="Shared secret for the Tailored-Signature HMAC.")
    event_types = models.JSONField(default=list, help_text="Event types to receive.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One event for one subscription: retried with backoff until delivered or dead-lettered."""

    class Status(ValueLabelChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        DEAD = "dead", "dead letter (gave up)"

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(default=uuid.uuid4, help_text="Idempotency key, sent as Tailored-Event-Id.")
    event_type = models.CharField(max_length=50)
    dedupe_key = models.CharField(max_length=255, help_text="One delivery per subscription and fact.")
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["subscription", "dedupe_key"], name="webhook_delivery_unique_fact"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} -> {self.subscription_id} ({self.status})"


class WebhookAttempt(models.Model):
    """The delivery log: one POST and what came back."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["delivery_id", "attempted_at", "id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} @ {self.attempted_at:%H:%M:%S}: {self.status_code or self.error[:40]}"

"""The CRM core: customers, the catalogue, behaviour (interactions), explicit feedback, segments."""
from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class CustomerQuerySet(models.QuerySet):
    def contactable(self) -> CustomerQuerySet:
        """Customers we may e-mail: an address, opted in, never unsubscribed."""
        return self.filter(email_opt_in=True, unsubscribed_at__isnull=True).exclude(email="")


class Customer(TimeStampedModel):
    external_id = models.CharField(
        max_length=191, unique=True, help_text="The customer's id in the shop or source system."
    )
    email = models.EmailField(blank=True, db_index=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    country = models.CharField(max_length=2, blank=True, db_index=True, help_text="ISO 3166-1 alpha-2.")
    attributes = models.JSONField(default=dict, blank=True)
    email_opt_in = models.BooleanField("e-mail opt-in", default=False)
    consent_updated_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.full_name or self.email or self.external_id

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_contactable(self) -> bool:
        return bool(self.email) and self.email_opt_in and self.unsubscribed_at is None


class ItemQuerySet(models.QuerySet):
    def available(self) -> ItemQuerySet:
        """Items that may be recommended: active and in stock."""
        return self.filter(active=True, in_stock=True)


class Item(TimeStampedModel):
    sku = models.CharField("SKU", max_length=191, unique=True)
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=200, blank=True, db_index=True)
    tags = models.JSONField(default=list, blank=True, help_text="A list of short strings.")
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="EUR")
    url = models.URLField(max_length=1000, blank=True)
    image_url = models.URLField(max_length=1000, blank=True)
    active = models.BooleanField(default=True, db_index=True)
    in_stock = models.BooleanField(default=True)
    attributes = models.JSONField(default=dict, blank=True)

    objects = ItemQuerySet.as_manager()

    class Meta:
        ordering = ["title", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gte=0), name="item_price_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        if not isinstance(self.tags, list) or not all(isinstance(t, str) for t in self.tags):
            raise ValidationError({"tags": "Tags must be a list of strings."})

    @property
    def text(self) -> str:
        """The text the language model embeds: title, description, category and tags."""
        parts = [self.title, self.description, self.category, ", ".join(self.tags or [])]
        return "\n".join(p for p in parts if p)


MAX_ORDER_ID_LENGTH = 100


class Interaction(models.Model):
    class Kind(models.TextChoices):
        VIEW = "view", "view"
        CLICK = "click", "click"
        ADD_TO_CART = "add_to_cart", "add to cart"
        PURCHASE = "purchase", "purchase"
        RATING = "rating", "rating"
        WISHLIST = "wishlist", "wishlist"

    class Source(models.TextChoices):
        WEB = "web", "web"
        API = "api", "API"
        CAMPAIGN = "campaign", "campaign"
        IMPORT = "import", "import"
        ADMIN = "admin", "admin"

    # No single-column indexes on customer, item and occurred_at: the composite indexes in Meta lead
    # with each of them and serve the same lookups; every index is paid on each imported line.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="interactions", db_index=False)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="interactions", db_index=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    value = models.FloatField(null=True, blank=True, help_text="A rating, or a revenue amount.")
    quantity = models.PositiveIntegerField(default=1)
    occurred_at = models.DateTimeField()
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.WEB)
    event_id = models.CharField(
        max_length=191, unique=True, help_text="Idempotency key: replaying an event with the same id is a no-op."
    )
    excluded_from_training = models.BooleanField(
        default=False, help_text="Set for events that look automated (e.g. mail scanners' clicks)."
    )
    order_id = models.CharField(
        max_length=MAX_ORDER_ID_LENGTH, blank=True, default="",
        help_text="The shop's order (basket) id; the lines of one order share it. Empty when unknown: "
        "then a customer's events with the same timestamp count as one basket.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-occurred_at"], name="interaction_customer_recent"),
            models.Index(fields=["customer", "order_id"], name="interaction_customer_order"),
            models.Index(fields=["occurred_at", "id"], name="interaction_since"),
            models.Index(fields=["item", "kind"], name="interaction_item_kind"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="interaction_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.kind} {self.item_id} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class Feedback(TimeStampedModel):
    class Kind(models.TextChoices):
        LIKE = "like", "like"
        DISLIKE = "dislike", "dislike"
        NOT_INTERESTED = "not_interested", "not interested"
        COMPLAINT = "complaint", "complaint"

    # The kinds that reject an item: it is taken out of the customer's lists and never recommended again.
    NEGATIVE_KINDS = (Kind.NOT_INTERESTED, Kind.DISLIKE, Kind.COMPLAINT)

    class Status(models.TextChoices):
        NEW = "new", "new"
        REVIEWED = "reviewed", "reviewed"
        ACTIONED = "actioned", "actioned"
        DISMISSED = "dismissed", "dismissed"

    class Source(models.TextChoices):
        API = "api", "API"
        EMAIL = "email", "e-mail"
        ADMIN = "admin", "admin"
        WEB = "web", "web"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="feedback")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="feedback", null=True, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    comment = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW, db_index=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.API)
    # The campaign recipient (campaigns.Recipient id) whose e-mail caused it. A plain id, not a foreign
    # key, so that crm does not depend on the campaigns app (imports point crm <- campaigns only).
    campaign_recipient_id = models.BigIntegerField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "feedback"
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="not_interested") | Q(item__isnull=False),
                name="feedback_not_interested_needs_item",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} from {self.customer}"


class Segment(TimeStampedModel):
    """A saved audience definition; ``rules`` is evaluated by ``crm.segments.segment_evaluate``.

    ``rules`` = ``{"match": "all" | "any", "conditions": [{"field": ..., "op": ..., "value": ...}]}``;
    see ``crm.segments`` for the fields a condition may use.
    """

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    rules = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from .segments import SegmentRuleError, validate_rules

        try:
            validate_rules(self.rules)
        except SegmentRuleError as exc:
            raise ValidationError({"rules": str(exc)}) from exc


class ApiKey(models.Model):
    """A key an integration sends as ``Authorization: Bearer <key>``; only its SHA-256 is stored.

    ``scopes`` is a list drawn from ``Scope``; ``admin`` implies every other scope. Keys are
    created in the admin or with ``manage.py create_api_key`` (``crm.services.api_key_create``),
    which show the raw key exactly once.
    """

    class Scope(models.TextChoices):
        READ = "read", "read"
        WRITE = "write", "write"
        ADMIN = "admin", "admin"

    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=8, db_index=True, editable=False, help_text="The key's first 8 characters.")
    hashed_key = models.CharField(max_length=64, unique=True, editable=False, help_text="SHA-256 hex of the key.")
    scopes = models.JSONField(default=list, blank=True, help_text='A list of "read", "write", "admin".')
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_raw_key(raw_key: str) -> str:
        """What is stored (and looked up) for a raw key: its SHA-256, hex."""
        return hashlib.sha256(raw_key.encode()).hexdigest()

    def clean(self) -> None:
        valid = set(self.Scope.values)
        if not isinstance(self.scopes, list) or not all(s in valid for s in self.scopes):
            raise ValidationError({"scopes": f"Scopes must be a list drawn from {sorted(valid)}."})

    def has_scope(self, scope: str) -> bool:
        """``admin`` implies every scope."""
        return self.is_active and (scope in self.scopes or self.Scope.ADMIN in self.scopes)


class ConsentEvent(models.Model):
    """One change of a customer's e-mail consent: what, when, through which channel, on whose word.

    Consent changes only through ``crm.consent.customer_consent_record`` (the consent endpoint, the
    admin actions, the unsubscribe link, creation with an opt-in), which writes one of these in the
    same transaction as the change; a customer's rows are their consent history.
    """

    class Action(models.TextChoices):
        OPT_IN = "opt_in", "opted in"
        OPT_OUT = "opt_out", "opted out"

    class Channel(models.TextChoices):
        API = "api", "API"
        ADMIN = "admin", "admin"
        EMAIL_LINK = "email_link", "unsubscribe link"
        IMPORT = "import", "import"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consent_events")
    action = models.CharField(max_length=10, choices=Action.choices)
    channel = models.CharField(max_length=20, choices=Channel.choices, help_text="How the change reached us.")
    source = models.CharField(
        max_length=200, help_text="Where the customer gave or withdrew consent, e.g. 'checkout checkbox'."
    )
    actor = models.CharField(max_length=200, help_text="Who recorded it: an API key, a staff user, the link.")
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} via {self.get_channel_display()} at {self.created_at:%Y-%m-%d %H:%M}"


class ErasedCustomer(models.Model):
    """A tombstone: the SHA-256 of an erased customer's external id, and when they were erased.

    It holds nothing in clear, only what is needed to honour the erasure later (a one-way hash:
    pseudonymous, so keep it under the same legal basis as a suppression list): events of that
    external id from before ``erased_at`` are never imported or trained on again (an old export
    re-imported, a shop replaying history). Delete the row to lift it (e.g. a mistaken erasure).
    """

    external_id_hash = models.CharField(max_length=64, unique=True)
    erased_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-erased_at", "-id"]
        verbose_name = "erased customer (tombstone)"

    def __str__(self) -> str:
        return f"erased {self.external_id_hash[:12]}… at {self.erased_at:%Y-%m-%d}"

"""The model registry, training runs, item embeddings and stored per-customer recommendations."""
from __future__ import annotations

import numpy as np
from django.db import models
from django.db.models import Q
from django.utils import timezone

from crm.choices import ValueLabelChoices


class ModelVersion(models.Model):
    """One trained recommender. Exactly one version is active at a time (a partial unique index)."""

    class Status(ValueLabelChoices):
        TRAINING = "training"
        TRAINED = "trained", "trained (not serving)"
        SCORING = "scoring", "scoring customers"
        READY = "ready", "scored, ready to serve"
        FAILED = "failed"
        RETIRED = "retired"

    algorithm = models.CharField(max_length=50)
    params = models.JSONField(default=dict, blank=True)
    data_stats = models.JSONField(default=dict, blank=True, help_text="Snapshot of the training data.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Offline metrics on the held-out split.")
    artifact_path = models.CharField(max_length=500, blank=True)
    device = models.CharField(max_length=50, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.TRAINING, db_index=True)
    is_active = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)
    previous = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The version that was active before this one (for rollback).",
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_model_version"),
        ]

    def __str__(self) -> str:
        return f"v{self.pk} {self.algorithm}{' (active)' if self.is_active else ''}"


class TrainingRun(models.Model):
    """Progress and log of one train (-> evaluate -> promote -> score) job, shown in the admin."""

    class Status(ValueLabelChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    algorithm = models.CharField(max_length=50, default="auto")
    params = models.JSONField(default=dict, blank=True)
    force_activate = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    stage = models.CharField(max_length=100, blank=True)
    progress = models.FloatField(default=0.0, help_text="0..1")
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=100, blank=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    promoted = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"run {self.pk} {self.algorithm} {self.status}"


class ItemEmbedding(models.Model):
    """The language-model embedding of an item's text; ``text_hash`` says whether it is stale."""

    item = models.OneToOneField("crm.Item", on_delete=models.CASCADE, related_name="embedding")
    model_name = models.CharField(max_length=200)
    text_hash = models.CharField(max_length=64)
    dim = models.PositiveIntegerField()
    vector = models.BinaryField(help_text="float32 little-endian")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["item_id"]

    def __str__(self) -> str:
        return f"embedding of item {self.item_id} ({self.model_name})"

    # The one encoding of ``vector``: float32 little-endian bytes.
    VECTOR_DTYPE = "<f4"

    @classmethod
    def encode_vector(cls, values: np.ndarray) -> bytes:
        return np.asarray(values).astype(cls.VECTOR_DTYPE).tobytes()

    @classmethod
    def decode_vector(cls, raw: bytes | memoryview | None) -> np.ndarray:
        return np.frombuffer(bytes(raw or b""), dtype=cls.VECTOR_DTYPE)

    @property
    def array(self) -> np.ndarray:
        """The stored vector as a read-only float32 array."""
        return self.decode_vector(self.vector)


class Recommendation(models.Model):
    """One stored recommendation of a model version for a customer, in one list, at a rank (1 = best).

    A version stores two lists per customer: ``discover`` (products the customer has not bought:
    cross-sell) and ``buy_again`` (products they bought before, ranked by when they will need them
    again: replenishment).
    """

    class List(ValueLabelChoices):
        # Values equal ``engine.tasks.LIST_DISCOVER`` / ``LIST_BUY_AGAIN``.
        DISCOVER = "discover"
        BUY_AGAIN = "buy_again", "buy again"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="recommendations")
    customer = models.ForeignKey("crm.Customer", on_delete=models.CASCADE, related_name="recommendations")
    list = models.CharField(max_length=20, choices=List.choices, default=List.DISCOVER)
    rank = models.PositiveIntegerField()
    item = models.ForeignKey("crm.Item", on_delete=models.CASCADE, related_name="+")
    score = models.FloatField()
    probability = models.FloatField(null=True, blank=True, help_text="Calibrated P(interaction).")
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["model_version_id", "customer_id", "list", "rank"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "list", "customer", "rank"], name="recommendation_unique_list_rank"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.list} #{self.rank} {self.item_id} for {self.customer_id} (v{self.model_version_id})"

"""Admin pages for the model registry: versions (activate / roll back), training runs, stored lists.

Everything here is written by training and scoring jobs, so the pages are read-only except for a
version's notes and the two registry operations, which go through ``services.registry``.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from crm.models import Customer

from .models import ItemEmbedding, ModelVersion, Recommendation, TrainingRun
from .services.registry import ActivationError, model_version_activate, model_version_rollback

HEADLINE_METRICS = ("ndcg@10", "hr@10")
ACTIVATE_ONE = "Select exactly one version to activate."
REFRESH_SECONDS = 5


def metric_value(metrics: dict, name: str) -> float | None:
    """A headline metric, from the held-out test split when the run stored one (``metrics["test"]``)."""
    for source in (metrics.get("test"), metrics):
        if isinstance(source, dict) and isinstance(source.get(name), int | float):
            return float(source[name])
    return None


def _format_value(value: Any, *, fixed: bool = False) -> str:
    """Metrics (``fixed``) get four decimals so columns line up; other numbers their natural precision."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.1f}"
        return f"{value:.4f}" if fixed else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(_format_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_format_value(v)}" for k, v in value.items())
    return str(value)


def key_value_table(data: dict | None, *, suffix: str = "") -> str:
    """A two-column table of a flat JSON dict (nested values are shown inline)."""
    if not data:
        return "—"
    rows = format_html_join(
        "", "<tr><th>{}</th><td>{}{}</td></tr>", ((k, _format_value(v), suffix) for k, v in data.items())
    )
    return format_html('<table class="tailored-kv">{}</table>', rows)


def _metric_cells(values) -> str:
    return format_html_join("", "<td>{}</td>", ((_format_value(v, fixed=True),) for v in values))


def metrics_table(metrics: dict | None) -> str:
    """Rows = metric names; columns = the splits stored (test, validation, the active version's test)."""
    if not metrics:
        return "No metrics recorded."
    columns = {k: v for k, v in metrics.items() if isinstance(v, dict) and k != "candidates"}
    labels = {"test": "test (held out)", "validation": "validation", "active_test": "active version, test"}
    if not columns:  # a flat dict of metric -> value
        return key_value_table(metrics)
    names = list(dict.fromkeys(name for column in columns.values() for name in column))
    header = format_html_join("", "<th>{}</th>", ((labels.get(c, c),) for c in columns))
    body = format_html_join(
        "",
        "<tr><th>{}</th>{}</tr>",
        (
            (name, _metric_cells(column.get(name, "—") for column in columns.values()))
            for name in names
        ),
    )
    extras = {k: v for k, v in metrics.items() if not isinstance(v, dict) and k != "candidates"}
    note = format_html_join("", "<p><strong>{}</strong>: {}</p>", ((k, _format_value(v)) for k, v in extras.items()))
    return format_html('<table class="tailored-metrics"><tr><th>metric</th>{}</tr>{}</table>{}', header, body, note)


def candidates_table(metrics: dict | None) -> str:
    """The algorithms an ``auto`` run compared, with their validation metrics."""
    candidates = (metrics or {}).get("candidates")
    if not isinstance(candidates, dict) or not candidates:
        return "—"
    names = list(dict.fromkeys(m for v in candidates.values() if isinstance(v, dict) for m in v))
    header = format_html_join("", "<th>{}</th>", ((n,) for n in names))
    body = format_html_join(
        "",
        "<tr><th>{}</th>{}</tr>",
        (
            (algo, _metric_cells(v.get(n, "—") for n in names))
            for algo, v in candidates.items()
            if isinstance(v, dict)
        ),
    )
    return format_html('<table class="tailored-metrics"><tr><th>algorithm</th>{}</tr>{}</table>', header, body)


def progress_bar(fraction: float) -> str:
    """A ``<progress>`` element: no inline style, so the Content-Security-Policy needs no 'unsafe-inline'."""
    percent = max(0.0, min(1.0, fraction or 0.0)) * 100
    return format_html(
        '<progress class="tailored-progress" max="100" value="{}" title="{}%">{}%</progress>'
        '<span class="tailored-progress-label">{}%</span>',
        f"{percent:.1f}",
        f"{percent:.0f}",
        f"{percent:.0f}",
        f"{percent:.0f}",
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by jobs: viewable, never added or edited by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("version", "algorithm", "status", "is_active", "ndcg_at_10", "hr_at_10", "device", "created_at")
    list_display_links = ("version", "algorithm")
    list_filter = ("status", "is_active", "algorithm", "device")
    search_fields = ("algorithm", "notes")
    actions = ("activate_selected", "rollback")
    change_form_template = "admin/recommendations/modelversion/change_form.html"
    readonly_fields = (
        "algorithm", "status", "is_active", "activated_at", "previous", "device", "created_at", "artifact_path",
        "metrics_table", "candidates_table", "params_table", "data_stats_table", "timings_table",
        "recommendation_count",
    )
    fieldsets = (
        (None, {"fields": ("algorithm", "status", "is_active", "activated_at", "previous", "device", "created_at")}),
        ("Offline evaluation", {"fields": ("metrics_table", "candidates_table")}),
        ("Training", {"fields": ("params_table", "data_stats_table", "timings_table", "artifact_path")}),
        ("Serving", {"fields": ("recommendation_count", "notes")}),
    )

    def has_add_permission(self, request) -> bool:
        return False  # versions are created by training runs

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.is_active)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # could delete the serving version; delete retired ones one by one
        return actions

    @admin.display(description="version", ordering="id")
    def version(self, obj: ModelVersion) -> str:
        return f"v{obj.pk}"

    @admin.display(description="NDCG@10")
    def ndcg_at_10(self, obj: ModelVersion) -> str:
        value = metric_value(obj.metrics or {}, "ndcg@10")
        return "—" if value is None else f"{value:.4f}"

    @admin.display(description="HR@10")
    def hr_at_10(self, obj: ModelVersion) -> str:
        value = metric_value(obj.metrics or {}, "hr@10")
        return "—" if value is None else f"{value:.4f}"

    @admin.display(description="metrics")
    def metrics_table(self, obj: ModelVersion) -> str:
        return metrics_table(obj.metrics)

    @admin.display(description="candidates compared")
    def candidates_table(self, obj: ModelVersion) -> str:
        return candidates_table(obj.metrics)

    @admin.display(description="hyper-parameters")
    def params_table(self, obj: ModelVersion) -> str:
        return key_value_table(obj.params)

    @admin.display(description="training data")
    def data_stats_table(self, obj: ModelVersion) -> str:
        return key_value_table(obj.data_stats)

    @admin.display(description="timings (seconds)")
    def timings_table(self, obj: ModelVersion) -> str:
        return key_value_table(obj.timings)

    @admin.display(description="stored recommendations")
    def recommendation_count(self, obj: ModelVersion) -> str:
        url = reverse("admin:recommendations_recommendation_changelist") + f"?model_version__id__exact={obj.pk}"
        return format_html('<a href="{}">{} rows</a>', url, f"{obj.recommendations.count():,}")

    # --- registry operations ------------------------------------------------------------------------

    def _activate(self, request, version: ModelVersion) -> None:
        try:
            version = model_version_activate(version=version)
        except ActivationError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"{version} is now serving recommendations.", messages.SUCCESS)

    def _rollback(self, request) -> None:
        try:
            version = model_version_rollback()
        except ActivationError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"Rolled back: {version} is serving again.", messages.SUCCESS)

    @admin.action(description="Activate this version (serve its recommendations)", permissions=["change"])
    def activate_selected(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, ACTIVATE_ONE, messages.WARNING)
            return
        self._activate(request, queryset.get())

    @admin.action(description="Roll back to the previously active version", permissions=["change"])
    def rollback(self, request, queryset):
        self._rollback(request)

    def get_urls(self):
        urls = [
            path("<path:object_id>/activate/", self.admin_site.admin_view(self.activate_view),
                 name="recommendations_modelversion_activate"),
            path("rollback/", self.admin_site.admin_view(self.rollback_view),
                 name="recommendations_modelversion_rollback"),
        ]
        return urls + super().get_urls()

    def activate_view(self, request, object_id):
        version = get_object_or_404(ModelVersion, pk=unquote(object_id))
        if request.method == "POST" and self.has_change_permission(request, version):
            self._activate(request, version)
        return HttpResponseRedirect(reverse("admin:recommendations_modelversion_change", args=[version.pk]))

    def rollback_view(self, request):
        if request.method == "POST" and self.has_change_permission(request):
            self._rollback(request)
        return HttpResponseRedirect(reverse("admin:recommendations_modelversion_changelist"))


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ("run", "algorithm", "status", "stage", "progress_bar", "model_version", "promoted", "created_at",
                    "duration")
    list_display_links = ("run", "algorithm")
    list_filter = ("status", "algorithm", "promoted")
    list_select_related = ("model_version",)
    change_form_template = "admin/recommendations/trainingrun/change_form.html"
    fieldsets = (
        (None, {"fields": ("algorithm", "status", "stage", "progress_bar", "force_activate", "promoted",
                           "model_version")}),
        ("Log", {"fields": ("log_pre", "error_pre")}),
        ("Timing", {"fields": ("created_at", "started_at", "finished_at", "duration", "task_id", "params")}),
    )
    readonly_fields = ("progress_bar", "log_pre", "error_pre", "duration")

    @admin.display(description="run", ordering="id")
    def run(self, obj: TrainingRun) -> str:
        return f"#{obj.pk}"

    @admin.display(description="progress", ordering="progress")
    def progress_bar(self, obj: TrainingRun) -> str:
        return progress_bar(obj.progress)

    @admin.display(description="log")
    def log_pre(self, obj: TrainingRun) -> str:
        return format_html('<pre class="tailored-log">{}</pre>', obj.log or "(empty)")

    @admin.display(description="error")
    def error_pre(self, obj: TrainingRun) -> str:
        return format_html('<pre class="tailored-log tailored-error">{}</pre>', obj.error) if obj.error else "—"

    @admin.display(description="duration")
    def duration(self, obj: TrainingRun) -> str:
        if obj.started_at is None:
            return "—"
        end = obj.finished_at
        if end is None:
            from django.utils import timezone

            end = timezone.now()
        seconds = int((end - obj.started_at).total_seconds())
        return f"{seconds // 60}m {seconds % 60:02d}s"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, unquote(object_id))
        running = run is not None and run.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)
        extra_context = {**(extra_context or {}), "refresh_seconds": REFRESH_SECONDS if running else None}
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Recommendation)
class RecommendationAdmin(ReadOnlyAdmin):
    list_display = ("customer", "list", "rank", "item", "score_display", "probability_display", "reason",
                    "model_version")
    list_filter = ("list", "model_version")
    search_fields = ("customer__external_id", "customer__email", "item__sku")
    list_select_related = ("customer", "item", "model_version")
    raw_id_fields = ("customer", "item", "model_version")
    show_full_result_count = False
    list_per_page = 100

    @admin.display(description="score", ordering="score")
    def score_display(self, obj: Recommendation) -> str:
        return f"{obj.score:.4f}"

    @admin.display(description="P(interaction)", ordering="probability")
    def probability_display(self, obj: Recommendation) -> str:
        return "—" if obj.probability is None else f"{obj.probability:.1%}"


@admin.register(ItemEmbedding)
class ItemEmbeddingAdmin(ReadOnlyAdmin):
    list_display = ("item", "model_name", "dim", "short_hash", "updated_at")
    list_filter = ("model_name",)
    search_fields = ("item__sku", "item__title")
    list_select_related = ("item",)
    fields = ("item", "model_name", "dim", "text_hash", "vector_preview", "updated_at")
    readonly_fields = ("vector_preview",)
    show_full_result_count = False

    @admin.display(description="text hash")
    def short_hash(self, obj: ItemEmbedding) -> str:
        return obj.text_hash[:12]

    @admin.display(description="vector (first 8 of dim)")
    def vector_preview(self, obj: ItemEmbedding) -> str:
        import numpy as np

        values = np.frombuffer(bytes(obj.vector or b""), dtype="<f4")[:8]
        return ", ".join(f"{v:+.3f}" for v in values) + (" …" if obj.dim > 8 else "")


class ActiveRecommendationInline(admin.TabularInline):
    """The customer's list from the serving version, shown on the CRM customer page."""

    model = Recommendation
    fields = ("list", "rank", "item", "score_display", "probability_display", "reason")
    readonly_fields = fields
    ordering = ("list", "rank")
    extra = 0
    max_num = 0
    can_delete = False
    classes = ("tailored-compact",)
    verbose_name_plural = "recommendations (serving version, top 10)"

    @admin.display(description="score")
    def score_display(self, obj: Recommendation) -> str:
        return f"{obj.score:.3f}"

    @admin.display(description="P(interaction)")
    def probability_display(self, obj: Recommendation) -> str:
        return "—" if obj.probability is None else f"{obj.probability:.1%}"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("item").filter(model_version__is_active=True)
        return qs.filter(rank__lte=10)


def _attach_to_customer_admin() -> None:
    """Show recommendations on the customer page without crm importing this app (crm <- recommendations)."""
    customer_admin = admin.site._registry.get(Customer)
    if customer_admin is not None and ActiveRecommendationInline not in customer_admin.inlines:
        customer_admin.inlines = [*customer_admin.inlines, ActiveRecommendationInline]


_attach_to_customer_admin()

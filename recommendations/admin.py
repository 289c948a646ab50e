"""Admin pages for the model registry: versions (activate / roll back), training runs, stored lists.

Everything here is written by training and scoring jobs, so the pages are read-only except for a
version's notes and the two registry operations, which go through ``services.registry``. What the pages
show is built in ``presentation``; the customer page's recommendations inline is added to crm's
customer admin in ``RecommendationsConfig.ready()``.
"""
from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from crm.admin import ReadOnlyAdmin, ReadOnlyInline
from crm.admin_html import progress_html
from crm.charts import chart_html

from .curve import training_curve_chart
from .labels import algorithm_label
from .models import ItemEmbedding, ModelVersion, Recommendation, TrainingRun
from .presentation import candidates_html, json_dict_html, metric_value, version_metrics_html, version_quality_chart
from .services.registry import ActivationError, model_version_activate, model_version_rollback

ACTIVATE_ONE = "Select exactly one version to activate."
REFRESH_SECONDS = 5


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("version", "algorithm_name", "status", "is_active", "hr_at_10", "ndcg_at_10", "device",
                    "created_at")
    list_display_links = ("version", "algorithm_name")
    list_filter = ("status", "is_active", "algorithm", "device")
    search_fields = ("algorithm", "notes")
    actions = ("activate_selected", "rollback", "score_now")
    change_form_template = "admin/recommendations/modelversion/change_form.html"
    readonly_fields = (
        "algorithm_name", "status", "is_active", "activated_at", "previous", "device", "created_at", "artifact_stored",
        "metrics_table", "candidates_table", "params_table", "data_stats_table", "timings_table",
        "recommendation_count", "quality_chart", "training_runs",
    )
    fieldsets = (
        (None, {"fields": ("algorithm_name", "status", "is_active", "activated_at", "previous", "device", "created_at",
                           "training_runs")}),
        ("Offline evaluation", {"fields": ("metrics_table", "quality_chart", "candidates_table"),
                                "description": "Measured on each customer's last purchases, hidden from training. "
                                               "Higher is better for every measure."}),
        ("Training details (for data scientists)", {"fields": ("params_table", "data_stats_table", "timings_table",
                                                               "artifact_stored"), "classes": ("collapse",)}),
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

    @admin.display(description="algorithm", ordering="algorithm")
    def algorithm_name(self, obj: ModelVersion) -> str:
        return algorithm_label(obj.algorithm)

    @admin.display(description="ranking quality (top 10)")
    def ndcg_at_10(self, obj: ModelVersion) -> str:
        value = metric_value(obj.metrics or {}, "ndcg@10")
        return "n/a" if value is None else f"{value:.4f}"

    @admin.display(description="hit rate (top 10)")
    def hr_at_10(self, obj: ModelVersion) -> str:
        value = metric_value(obj.metrics or {}, "hr@10")
        return "n/a" if value is None else f"{value:.4f}"

    @admin.display(description="measures")
    def metrics_table(self, obj: ModelVersion) -> str:
        return version_metrics_html(obj.metrics)

    @admin.display(description="quality across versions")
    def quality_chart(self, obj: ModelVersion) -> str:
        return chart_html(version_quality_chart(), "chart-quality", height=260, empty="No measures recorded yet.")

    @admin.display(description="model file")
    def artifact_stored(self, obj: ModelVersion) -> str:
        return "stored" if obj.artifact_path else "not stored (the version cannot score)"

    @admin.display(description="trained by")
    def training_runs(self, obj: ModelVersion) -> str:
        runs = list(obj.training_runs.order_by("id"))
        if not runs:
            return obj.notes or "n/a"
        return format_html_join(", ", '<a href="{}">training run #{}</a>', (
            (reverse("admin:recommendations_trainingrun_change", args=[run.pk]), run.pk) for run in runs))

    @admin.display(description="candidates compared")
    def candidates_table(self, obj: ModelVersion) -> str:
        return candidates_html(obj.metrics)

    @admin.display(description="hyper-parameters")
    def params_table(self, obj: ModelVersion) -> str:
        return json_dict_html(obj.params)

    @admin.display(description="training data")
    def data_stats_table(self, obj: ModelVersion) -> str:
        return json_dict_html(obj.data_stats)

    @admin.display(description="timings (seconds)")
    def timings_table(self, obj: ModelVersion) -> str:
        return json_dict_html(obj.timings)

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

    @admin.action(description="Score now: write fresh recommendations with this version", permissions=["change"])
    def score_now(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to score with.", messages.WARNING)
            return
        source = queryset.get()
        if not source.artifact_path or source.status in (ModelVersion.Status.FAILED, ModelVersion.Status.TRAINING):
            self.message_user(request, f"v{source.pk} cannot score: it is {source.get_status_display()} and "
                                       "has no usable model file.", messages.ERROR)
            return
        from .services.scoring import model_version_rescore

        try:
            scored = model_version_rescore(version=source)
        except Exception as exc:  # a broken artefact or a scoring failure: say so, change nothing served
            self.message_user(request, f"Scoring with v{source.pk} failed: {exc}", messages.ERROR)
            return
        scored = scored or ModelVersion.objects.filter(notes=f"re-scored from v{source.pk}").order_by("-id").first()
        url = reverse("admin:recommendations_modelversion_change", args=[scored.pk])
        state = "is now serving" if scored.is_active else "is scoring in the background"
        self.message_user(request, format_html('Scoring queued: <a href="{}">v{}</a> (a copy of v{}) {}.',
                                               url, scored.pk, source.pk, state), messages.SUCCESS)

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
    list_display = ("run", "algorithm_name", "status", "stage", "progress_bar", "model_version", "outcome",
                    "created_at", "duration")
    list_display_links = ("run", "algorithm_name")
    list_filter = ("status", "algorithm", "promoted")
    list_select_related = ("model_version",)
    change_form_template = "admin/recommendations/trainingrun/change_form.html"
    change_list_template = "admin/recommendations/trainingrun/change_list.html"
    fieldsets = (
        (None, {"fields": ("algorithm_name", "status", "stage", "progress_bar", "outcome", "model_version")}),
        ("Training curve", {"fields": ("curve_chart",)}),
        ("Log", {"fields": ("log_pre", "error_pre"), "classes": ("collapse",)}),
        ("Timing", {"fields": ("created_at", "started_at", "finished_at", "duration", "params_table")}),
    )
    readonly_fields = ("algorithm_name", "progress_bar", "log_pre", "error_pre", "duration", "outcome", "curve_chart",
                       "params_table")

    @admin.display(description="algorithm", ordering="algorithm")
    def algorithm_name(self, obj: TrainingRun) -> str:
        return algorithm_label(obj.algorithm)

    @admin.display(description="outcome")
    def outcome(self, obj: TrainingRun) -> str:
        if obj.status == TrainingRun.Status.FAILED:
            return "failed: nothing served changed"
        if obj.status != TrainingRun.Status.SUCCEEDED:
            return "not finished"
        if obj.promoted:
            return "better than the serving version: now serving"
        if obj.force_activate:
            return "activated on request"
        return "not better than the serving version: kept for comparison"

    @admin.display(description="settings")
    def params_table(self, obj: TrainingRun) -> str:
        return json_dict_html(obj.params) if obj.params else "defaults"

    @admin.display(description="loss and validation per epoch")
    def curve_chart(self, obj: TrainingRun) -> str:
        running = obj.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)
        poll = reverse("admin:recommendations_trainingrun_progress", args=[obj.pk]) if running else ""
        return chart_html(training_curve_chart(obj.log), "chart-curve", height=260, poll_url=poll,
                          empty="No per-epoch curve: the algorithms of this run are fitted in one step.")

    @admin.display(description="run", ordering="id")
    def run(self, obj: TrainingRun) -> str:
        return f"#{obj.pk}"

    @admin.display(description="progress", ordering="progress")
    def progress_bar(self, obj: TrainingRun) -> str:
        return progress_html(obj.progress)

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

    def changelist_view(self, request, extra_context=None):
        can_train = request.user.has_perm("recommendations.add_trainingrun")
        return super().changelist_view(request, {**(extra_context or {}), "can_train": can_train})

    def get_urls(self):
        return [
            path("start/", self.admin_site.admin_view(self.start_view), name="recommendations_trainingrun_start"),
            path("<int:pk>/progress/", self.admin_site.admin_view(self.progress_view),
                 name="recommendations_trainingrun_progress"),
        ] + super().get_urls()

    def start_view(self, request):
        """POST: queue a training run (automatic choice) and go to its live page."""
        changelist = reverse("admin:recommendations_trainingrun_changelist")
        if request.method != "POST":
            return HttpResponseRedirect(changelist)
        if not request.user.has_perm("recommendations.add_trainingrun"):
            self.message_user(request, "You may not start training runs.", messages.ERROR)
            return HttpResponseRedirect(changelist)
        busy = TrainingRun.objects.filter(status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING]).first()
        if busy is not None:
            self.message_user(request, f"Training run #{busy.pk} is already {busy.get_status_display()}: "
                                       "follow it instead of starting another.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:recommendations_trainingrun_change", args=[busy.pk]))
        from .services.training import training_run_enqueue

        # background: without a broker the run trains in a thread after this response, so the page
        # answers at once and the live page shows the curve growing (a worker does it in production).
        run = training_run_enqueue(algorithm="auto", background=True)
        self.message_user(request, format_html(
            'Training run #{} queued. <a href="{}">Follow it live</a>.', run.pk,
            reverse("admin:recommendations_trainingrun_change", args=[run.pk])), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:recommendations_trainingrun_change", args=[run.pk]))

    def progress_view(self, request, pk: int):
        """JSON for the live page: the curve, progress and stage; ``done`` stops the polling."""
        run = get_object_or_404(TrainingRun, pk=pk)
        if not self.has_view_permission(request, run):
            return JsonResponse({"detail": "forbidden"}, status=403)
        done = run.status not in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)
        return JsonResponse({
            "done": done,
            "chart": training_curve_chart(run.log),
            "fields": {"status": run.get_status_display(), "stage": run.stage or "n/a",
                       "progress": f"{run.progress:.0%}", "log": run.log[-4000:]},
        })


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
        values = obj.array[:8]
        return ", ".join(f"{v:+.3f}" for v in values) + (" …" if obj.dim > 8 else "")


class ActiveRecommendationInline(ReadOnlyInline):
    """The customer's list from the serving version, shown on the CRM customer page (added there by
    ``RecommendationsConfig.ready()``: crm does not import this app)."""

    model = Recommendation
    fields = ("list", "rank", "item", "score_display", "probability_display", "reason")
    ordering = ("list", "rank")
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


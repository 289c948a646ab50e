"""Admin pages for the model registry: versions (activate / roll back), training runs, stored lists.

Everything here is written by training and scoring jobs, so the pages are read-only except for a
version's notes and the two registry operations, which go through ``services.registry``.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from crm.charts import chart, chart_html, dataset
from crm.models import Customer

from .curve import training_curve_chart
from .labels import (
    HEADLINE,
    SPLITS,
    TASKS,
    algorithm_label,
    headline_metrics,
    is_empty_slice,
    metric_help,
    metric_label,
    metric_number,
    task_label,
)
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
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "yes" if value else "no"
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


def _metric_cell(values: dict, name: str) -> str:
    """A value with its standard error when stored (``<name>_se``); "n/a" for an empty slice."""
    if is_empty_slice(name, values):
        return "n/a"
    value = values.get(name)
    if value is None or value == "—":
        return "n/a"
    text = _format_value(value, fixed=isinstance(value, float) and not name.endswith("seconds"))
    se = values.get(f"{name}_se")
    if isinstance(se, int | float) and not isinstance(se, bool):
        text += f" ± {se:.4f}"
    return text


def _metric_rows(names, columns: list[dict]) -> str:
    return format_html_join(
        "",
        '<tr><th title="{}">{}</th>{}<td class="help">{}</td></tr>',
        (
            (metric_help(name), metric_label(name),
             format_html_join("", "<td>{}</td>", ((_metric_cell(column, name),) for column in columns)),
             metric_help(name))
            for name in names
        ),
    )


def _metric_names(columns: list[dict]) -> list[str]:
    names = dict.fromkeys(
        name for column in columns for name, value in column.items()
        if not name.endswith("_se") and isinstance(value, int | float) and not isinstance(value, bool)
    )
    return list(names)


def metrics_table(metrics: dict | None) -> str:
    """Offline measures in plain words: per task when stored that way, else per split (test, validation)."""
    if not metrics:
        return "No measures recorded."
    tasks = metrics.get("tasks")
    if isinstance(tasks, dict) and tasks:
        parts = []
        for task, values in tasks.items():
            if not isinstance(values, dict):
                continue
            baselines = values.get("baselines") if isinstance(values.get("baselines"), dict) else {}
            baselines = {name: b for name, b in baselines.items() if isinstance(b, dict) and b}
            columns = [values, *baselines.values()]
            header = format_html_join("", "<th>{}</th>", (
                (label,) for label in ["this version", *(f"vs {algorithm_label(b)}" for b in baselines)]))
            parts.append(format_html(
                '<h3 class="tailored-task">{}: {}</h3><table class="tailored-metrics"><tr><th>measure</th>{}'
                "<th>what it means</th></tr>{}</table>",
                task_label(task), TASKS.get(task, ("", ""))[1], header, _metric_rows(_metric_names([values]), columns),
            ))
        return format_html_join("", "{}", ((part,) for part in parts)) or "No measures recorded."
    columns = {k: v for k, v in metrics.items() if isinstance(v, dict) and k not in ("candidates", "tasks")}
    if not columns:  # a flat dict of metric -> value
        columns = {"test": metrics}
    labels = dict(SPLITS)
    active = columns.get("active_test")
    if active and active.get("version"):
        labels["active_test"] = f"serving version then (v{active['version']}), same test"
    header = format_html_join("", "<th>{}</th>", ((labels.get(c, c.replace("_", " ")),) for c in columns))
    body = _metric_rows(_metric_names(list(columns.values())), list(columns.values()))
    protocol = metrics.get("protocol")
    note = format_html('<p class="help">How it was measured: {}.</p>', protocol) if protocol else ""
    return format_html('<table class="tailored-metrics"><tr><th>measure</th>{}<th>what it means</th></tr>{}</table>{}',
                       header, body, note)


def candidates_table(metrics: dict | None) -> str:
    """The algorithms an ``auto`` run compared, with their validation measures."""
    candidates = (metrics or {}).get("candidates")
    if not isinstance(candidates, dict) or not candidates:
        return "Only one algorithm was trained."
    names = [n for n in dict.fromkeys(m for v in candidates.values() if isinstance(v, dict) for m in v)
             if n != "error"]
    header = format_html_join("", "<th>{}</th>", ((metric_label(n),) for n in names))
    body = format_html_join(
        "",
        "<tr><th>{}</th>{}<td>{}</td></tr>",
        (
            (algorithm_label(algo), format_html_join("", "<td>{}</td>", ((_metric_cell(v, n),) for n in names)),
             f"failed: {v['error']}" if v.get("error") else "")
            for algo, v in candidates.items()
            if isinstance(v, dict)
        ),
    )
    return format_html('<table class="tailored-metrics"><tr><th>algorithm</th>{}<th></th></tr>{}</table>',
                       header, body)


def quality_chart(current: ModelVersion | None = None, limit: int = 15) -> dict:
    """Hit rate per task across the latest versions, with standard-error whiskers where stored."""
    versions = list(ModelVersion.objects.order_by("-id")[:limit])[::-1]
    per_version = [headline_metrics(v.metrics) for v in versions]
    tasks = list(dict.fromkeys(task for metrics in per_version for task in metrics))
    datasets = []
    for index, task in enumerate(tasks):
        for offset, name in enumerate(HEADLINE):
            values = [metric_number(m.get(task, {}), name) for m in per_version]
            if all(v is None for v in values):
                continue
            ses = [metric_number(m.get(task, {}), f"{name}_se") for m in per_version]
            bars = [[v - s, v + s] if v is not None and s is not None else None for v, s in zip(values, ses)]
            label = metric_label(name).replace(" (top 10)", "")
            datasets.append(dataset(f"{task_label(task)}: {label}" if len(tasks) > 1 else label, values,
                                    index * 2 + offset, errorBars=bars if any(bars) else None))
    labels = [f"v{v.pk}{' (serving)' if v.is_active else ''}" for v in versions]
    spec = chart("bar", labels, datasets, y_title="higher is better")
    tops = [bar[1] for ds in datasets for bar in (ds.get("errorBars") or []) if bar]
    if tops:  # leave room for the whiskers
        spec["options"]["scales"]["y"]["suggestedMax"] = max(tops) * 1.05
    return spec


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
        return metrics_table(obj.metrics)

    @admin.display(description="quality across versions")
    def quality_chart(self, obj: ModelVersion) -> str:
        return chart_html(quality_chart(obj), "chart-quality", height=260, empty="No measures recorded yet.")

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
        return key_value_table(obj.params) if obj.params else "defaults"

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

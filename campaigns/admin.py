"""Admin: campaigns with a results panel and actions; recipients with an in-doubt filter, preview, reconcile."""
from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join

from crm.csp import email_preview_csp

from .links import open_url
from .models import Campaign, Click, Recipient
from .services.build import CampaignStateError, campaign_build
from .services.render import recipient_render
from .services.results import campaign_results
from .services.schedule import campaign_cancel, campaign_pause
from .services.send import campaign_send, recipient_reconcile
from .templating import CampaignTemplateError

BLANK_PIXEL = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "channel", "status", "audience", "recommendation_list", "n_items", "holdout_share",
                    "current_run", "sent_at")
    list_filter = ("status", "channel", "recommendation_list")
    search_fields = ("name",)
    autocomplete_fields = ()
    readonly_fields = ("status", "current_run", "built_at", "sent_at", "created_at", "updated_at", "results_panel")
    actions = ["build_action", "send_action", "pause_action", "cancel_action"]
    fieldsets = (
        (None, {"fields": ("name", "description", "channel", "audience", "status")}),
        ("Items", {"fields": ("recommendation_list", "n_items", "filter_category", "filter_min_price",
                              "filter_max_price", "max_per_category")}),
        ("Rules", {"fields": ("consent_required", "holdout_share", "frequency_cap_count", "frequency_cap_days")}),
        ("Schedule", {"fields": ("send_at", "periodic_task"),
                      "description": "A send time for a one-off campaign, or a periodic task (crontab) for a "
                                     "recurring one. `manage.py campaign schedule` sets either."}),
        ("Templates (empty: the defaults under templates/campaigns/email/)",
         {"classes": ("collapse",), "fields": ("subject_template", "html_template", "text_template")}),
        ("Results", {"fields": ("results_panel", "current_run", "built_at", "sent_at", "created_at", "updated_at")}),
    )

    @admin.display(description="results")
    def results_panel(self, obj: Campaign) -> str:
        if obj.pk is None or not obj.recipients.exists():
            return "Not built yet."
        results = campaign_results(campaign=obj)
        rows = [(key, results[key]) for key in (
            "recipients", "holdout", "skipped", "pending", "sent", "failed", "in_doubt", "opened", "clicked",
            "scanner_flagged", "converted", "revenue", "unsubscribed")]
        rows += [("skipped: " + reason, n) for reason, n in results["skipped_by_reason"].items()]
        for label in ("click_uplift", "purchase_uplift"):
            ci = results[label]
            rows.append((label.replace("_", " "), "n/a (empty group)" if ci is None else
                         f"{ci['treated_rate']:.2%} vs {ci['control_rate']:.2%}: {ci['uplift']:+.2%} "
                         f"(95% CI {ci['ci_low']:+.2%} .. {ci['ci_high']:+.2%})"))
        html = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        in_doubt_url = reverse("admin:campaigns_recipient_changelist") + f"?campaign__id__exact={obj.pk}&state=sending"
        return format_html('<table class="campaign-results">{}</table><p><a href="{}">recipients in doubt</a></p>',
                           html, in_doubt_url)

    def _run(self, request, queryset, service, verb: str) -> None:
        for campaign in queryset:
            try:
                service(campaign=campaign)
                self.message_user(request, f"{campaign}: {verb}.")
            except (CampaignStateError, CampaignTemplateError) as exc:
                self.message_user(request, f"{campaign}: {exc}", messages.ERROR)

    @admin.action(description="Build selected campaigns (recipients and items)")
    def build_action(self, request, queryset):
        self._run(request, queryset, campaign_build, "built")

    @admin.action(description="Send selected campaigns (enqueue batches)")
    def send_action(self, request, queryset):
        self._run(request, queryset, lambda campaign: campaign_send(campaign=campaign, wait=False), "sending")

    @admin.action(description="Pause selected campaigns")
    def pause_action(self, request, queryset):
        self._run(request, queryset, campaign_pause, "paused")

    @admin.action(description="Cancel selected campaigns (also stuck ones; back to draft if nobody was mailed)")
    def cancel_action(self, request, queryset):
        for campaign in queryset:
            try:
                campaign = campaign_cancel(campaign=campaign)
                self.message_user(request, f"{campaign}: now {campaign.get_status_display()}.")
            except CampaignStateError as exc:
                self.message_user(request, str(exc), messages.ERROR)


class InDoubtFilter(admin.SimpleListFilter):
    title = "delivery"
    parameter_name = "delivery"

    def lookups(self, request, model_admin):
        return [("in_doubt", "in doubt (claimed, never confirmed)"), ("failed", "failed")]

    def queryset(self, request, queryset):
        if self.value() == "in_doubt":
            return queryset.in_doubt()
        if self.value() == "failed":
            return queryset.filter(state=Recipient.State.FAILED)
        return queryset


class ClickInline(admin.TabularInline):
    model = Click
    fields = ("item", "clicked_at", "count", "flagged", "flag_reason", "user_agent")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    list_display = ("customer", "campaign", "run", "state", "skip_reason", "is_holdout", "sent_at", "opened_at",
                    "clicked_at", "converted_at", "preview_link")
    list_filter = (InDoubtFilter, "state", "skip_reason", "is_holdout", "click_flagged", "campaign")
    search_fields = ("email", "customer__external_id", "message_id")
    list_select_related = ("customer", "campaign")
    raw_id_fields = ("customer", "campaign")
    readonly_fields = [f.name for f in Recipient._meta.fields]
    inlines = [ClickInline]
    actions = ["mark_sent_action", "requeue_action"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="preview")
    def preview_link(self, obj: Recipient) -> str:
        return format_html('<a href="{}">preview</a>', reverse("admin:campaigns_recipient_preview", args=[obj.pk]))

    def get_urls(self):
        return [
            path("<int:pk>/preview/", self.admin_site.admin_view(self.preview_view),
                 name="campaigns_recipient_preview"),
        ] + super().get_urls()

    @method_decorator(email_preview_csp)
    def preview_view(self, request, pk: int):
        recipient = get_object_or_404(Recipient.objects.select_related("customer", "campaign"), pk=pk)
        if not self.has_view_permission(request, recipient):
            return HttpResponse(status=403)
        context = {**self.admin_site.each_context(request), "recipient": recipient, "opts": self.model._meta}
        try:
            rendered = recipient_render(recipient=recipient)
        except CampaignTemplateError as exc:
            context.update(title="Preview: cannot render", render_error=str(exc))
            return TemplateResponse(request, "admin/campaigns/recipient_preview.html", context)
        # Looking at the preview must not count as the customer opening the e-mail.
        preview_html = rendered.html.replace(open_url(recipient_id=recipient.pk), BLANK_PIXEL)
        context.update(rendered=rendered, preview_html=preview_html, title=f"Preview: {rendered.subject}")
        return TemplateResponse(request, "admin/campaigns/recipient_preview.html", context)

    def _reconcile(self, request, queryset, delivered: bool, label: str):
        in_doubt = queryset.filter(state=Recipient.State.SENDING)
        if request.POST.get("confirm") == "yes":
            n = recipient_reconcile(recipient_ids=list(in_doubt.values_list("pk", flat=True)), delivered=delivered)
            self.message_user(request, f"{n} in-doubt recipient(s) {label}.")
            return None
        context = {**self.admin_site.each_context(request), "title": f"Confirm: {label}", "recipients": in_doubt,
                   "action": request.POST.get("action"), "label": label, "delivered": delivered,
                   "opts": self.model._meta, "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)}
        return TemplateResponse(request, "admin/campaigns/recipient_reconcile.html", context)

    @admin.action(description="Reconcile in-doubt: mark as sent (the message was delivered)")
    def mark_sent_action(self, request, queryset):
        return self._reconcile(request, queryset, True, "marked sent")

    @admin.action(description="Reconcile in-doubt: requeue (send again: may duplicate if it was delivered)")
    def requeue_action(self, request, queryset):
        return self._reconcile(request, queryset, False, "requeued")

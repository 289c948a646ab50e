"""Admin: campaigns with results (funnel, uplift, per-item), an e-mail preview and a confirmed send; recipients
and clicks read-only; the demo's file outbox.

Sent campaigns, recipients and clicks are records of what happened: they can be viewed, never edited.
State changes go through the services, and an impossible one is refused with a sentence, not attempted.
What the pages show is built in ``presentation``; the deliverability and outbound-webhook pages are in
``delivery_admin`` and ``webhooks_admin``.
"""
from __future__ import annotations

import random
from pathlib import Path

from django.conf import settings
from django.contrib import admin, messages
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html

from crm.admin import ReadOnlyAdmin, ReadOnlyInline
from crm.admin_html import key_value_html
from crm.charts import money, percent
from crm.csp import email_preview_csp

from . import delivery_admin, webhooks_admin  # noqa: F401  (they register the deliverability and webhook pages)
from .models import Campaign, Click, Recipient
from .presentation import (
    STATE_HELP,
    STATUS_HELP,
    customer_label,
    funnel_html,
    item_performance,
    item_performance_html,
    preview_without_tracking,
    recipient_counts,
    recipient_items_html,
    results_summary,
    short_datetime,
    uplift_html,
)
from .services.build import CampaignStateError, campaign_build
from .services.render import campaign_templates_validate, recipient_render
from .services.results import campaign_results
from .services.schedule import campaign_cancel, campaign_pause
from .services.send import campaign_send, recipient_reconcile
from .templating import CampaignTemplateError

LOCKED = (Campaign.Status.SENDING, Campaign.Status.SENT, Campaign.Status.BUILDING)
OUTBOX_LIMIT = 200
NOT_BUILT = "Not built yet: build the campaign to choose recipients and items."


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "channel", "status_display", "audience_display", "recommendation_list", "n_items",
                    "holdout_percent", "current_run", "sent_at")
    list_filter = ("status", "channel", "recommendation_list")
    search_fields = ("name",)
    change_form_template = "admin/campaigns/campaign/change_form.html"
    readonly_fields = ("status_display", "current_run", "built_at", "sent_at", "created_at", "updated_at",
                       "results_panel", "funnel_panel", "uplift_panel", "items_panel")
    actions = ["build_action", "send_action", "pause_action", "cancel_action"]
    fieldsets = (
        (None, {"fields": ("name", "description", "channel", "audience", "status_display")}),
        ("Items", {"fields": ("recommendation_list", "n_items", "filter_category", "filter_min_price",
                              "filter_max_price", "max_per_category")}),
        ("Rules", {"fields": ("consent_required", "holdout_share", "frequency_cap_count", "frequency_cap_days")}),
        ("Schedule", {"fields": ("send_at", "periodic_task"),
                      "description": "A send time for a one-off campaign, or a periodic task (crontab) for a "
                                     "recurring one. `manage.py campaign schedule` sets either."}),
        ("Templates (empty: the defaults under templates/campaigns/email/)",
         {"classes": ("collapse",), "fields": ("subject_template", "html_template", "text_template")}),
        ("Results", {"fields": ("funnel_panel", "uplift_panel", "results_panel", "items_panel")}),
        ("Record", {"fields": ("current_run", "built_at", "sent_at", "created_at", "updated_at"),
                    "classes": ("collapse",)}),
    )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or obj.status not in LOCKED:
            return fieldsets
        # Read-only view: the holdout as a percentage rather than the raw fraction.
        swap = {"holdout_share": "holdout_percent", "audience": "audience_display"}
        fieldsets = [(name, {**options, "fields": tuple(swap.get(f, f) for f in options["fields"])})
                     for name, options in fieldsets]
        # A sent campaign is read for its results: they come first.
        return sorted(fieldsets, key=lambda fieldset: fieldset[0] != "Results")

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "holdout_percent", "audience_display")

    @admin.display(description="audience", ordering="audience__name")
    def audience_display(self, obj: Campaign) -> str:
        return str(obj.audience) if obj.audience_id else "every customer"

    def has_change_permission(self, request, obj=None) -> bool:
        """A campaign being built, sending or sent is a record: view it, do not edit it."""
        if obj is not None and obj.status in LOCKED:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status in LOCKED:
            return False
        return super().has_delete_permission(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if "holdout_share" in form.base_fields:
            form.base_fields["holdout_share"].help_text = (
                "Share of eligible customers kept out to measure the campaign's effect, as a fraction: "
                "0.1 = 10%. Always the same customers for a given campaign.")
        return form

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: Campaign) -> str:
        return format_html('<span title="{}">{}</span>', STATUS_HELP.get(obj.status, ""), obj.get_status_display())

    @admin.display(description="holdout", ordering="holdout_share")
    def holdout_percent(self, obj: Campaign) -> str:
        return percent(obj.holdout_share, 0)

    def _results(self, obj: Campaign) -> dict | None:
        if obj.pk is None or not obj.recipients.exists():
            return None
        cache = getattr(self, "_results_cache", {})
        if cache.get("pk") != obj.pk or cache.get("updated") != obj.updated_at:
            cache = {"pk": obj.pk, "updated": obj.updated_at, "results": campaign_results(campaign=obj)}
            self._results_cache = cache
        return cache["results"]

    @admin.display(description="funnel")
    def funnel_panel(self, obj: Campaign) -> str:
        results = self._results(obj)
        return NOT_BUILT if results is None else funnel_html(results)

    @admin.display(description="uplift vs holdout")
    def uplift_panel(self, obj: Campaign) -> str:
        results = self._results(obj)
        return "n/a" if results is None else uplift_html(results)

    @admin.display(description="details")
    def results_panel(self, obj: Campaign) -> str:
        results = self._results(obj)
        if results is None:
            return "n/a"
        all_url = reverse("admin:campaigns_recipient_changelist") + f"?campaign__id__exact={obj.pk}"
        in_doubt_url = all_url + "&delivery=in_doubt"
        return format_html('{}<p><a href="{}">all recipients</a> &middot; <a href="{}">recipients in doubt</a></p>',
                           key_value_html(results_summary(results)), all_url, in_doubt_url)

    @admin.display(description="per item")
    def items_panel(self, obj: Campaign) -> str:
        if obj.pk is None:
            return "n/a"
        rows = item_performance(campaign=obj)
        if not rows:
            return "Nothing sent yet."
        return item_performance_html(rows)

    # --- preview ------------------------------------------------------------------------------------

    def _preview_context(self, request, campaign: Campaign) -> dict:
        recipients = Recipient.objects.filter(campaign=campaign, run=campaign.current_run).exclude(
            state=Recipient.State.SKIPPED).select_related("customer", "campaign")
        total = recipients.count()
        if not total:
            return {"preview_empty": True}
        chosen = None
        wanted = request.GET.get("preview", "")
        if wanted.isdigit():
            chosen = recipients.filter(pk=int(wanted)).first()
        if chosen is None:
            chosen = recipients.order_by("pk")[random.randrange(total)]
        choices = [(r.pk, customer_label(r.customer)) for r in recipients.order_by("pk")[:30]]
        context = {"preview_recipient": chosen, "preview_customer": customer_label(chosen.customer),
                   "preview_choices": choices, "preview_total": total}
        try:
            context["preview"] = preview_without_tracking(recipient_render(recipient=chosen), recipient=chosen)
        except CampaignTemplateError as exc:
            context["preview_error"] = str(exc)
        return context

    @method_decorator(email_preview_csp)  # the e-mail preview's srcdoc inherits this page's policy
    def change_view(self, request, object_id, form_url="", extra_context=None):
        campaign = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if campaign is not None:
            extra.update(self._preview_context(request, campaign))
            extra["send_url"] = reverse("admin:campaigns_campaign_send", args=[campaign.pk])
            extra["can_send"] = campaign.channel == Campaign.Channel.EMAIL and campaign.status not in LOCKED
        return super().change_view(request, object_id, form_url, extra)

    # --- send with confirmation ------------------------------------------------------------------------

    def get_urls(self):
        return [
            path("<int:pk>/send/", self.admin_site.admin_view(self.send_view), name="campaigns_campaign_send"),
            path("outbox/", self.admin_site.admin_view(self.outbox_view), name="campaigns_campaign_outbox"),
            path("outbox/<str:name>/", self.admin_site.admin_view(self.outbox_message_view),
                 name="campaigns_campaign_outbox_message"),
        ] + super().get_urls()

    def _cannot_send(self, campaign: Campaign, counts: dict) -> str:
        if campaign.channel != Campaign.Channel.EMAIL:
            return f"{campaign} is an offer list (an export): it is never e-mailed."
        if not campaign.current_run:
            return f"{campaign} has not been built yet: build it first to choose recipients and items."
        if campaign.status in (Campaign.Status.SENDING, Campaign.Status.BUILDING):
            return f"{campaign} is already {campaign.get_status_display()}: wait until it finishes."
        if campaign.status in (Campaign.Status.CANCELLED, Campaign.Status.DRAFT):
            return f"{campaign} is {campaign.get_status_display()}: it cannot be sent."
        try:
            campaign_templates_validate(campaign=campaign)
        except CampaignTemplateError as exc:
            return f"{campaign}: {exc}"
        if not counts["pending"]:
            if campaign.status == Campaign.Status.SENT:
                return f"{campaign} was already sent; nothing is waiting. Build it again for a new run."
            return f"{campaign}: no recipient is waiting to be sent."
        return ""

    def send_view(self, request, pk: int):
        campaign = get_object_or_404(Campaign, pk=pk)
        change_url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
        if not super().has_change_permission(request, campaign):
            self.message_user(request, "You may not send campaigns.", messages.ERROR)
            return HttpResponseRedirect(change_url)
        counts = recipient_counts(campaign=campaign)
        refusal = self._cannot_send(campaign, counts)
        if refusal:
            self.message_user(request, refusal, messages.ERROR)
            return HttpResponseRedirect(change_url)
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            try:
                campaign_send(campaign=campaign, wait=False)
            except (CampaignStateError, CampaignTemplateError) as exc:
                self.message_user(request, f"{campaign}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{campaign}: sending {counts['pending']:,} e-mail(s).", messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        context = {**self.admin_site.each_context(request), "title": f"Send {campaign}?", "campaign": campaign,
                   "counts": counts, "opts": self.model._meta, "change_url": change_url}
        return TemplateResponse(request, "admin/campaigns/send_confirmation.html", context)

    # --- file outbox --------------------------------------------------------------------------------------

    def _outbox(self) -> Path:
        return Path(settings.EMAIL_FILE_PATH)

    def outbox_view(self, request):
        folder = self._outbox()
        files = sorted(folder.glob("*.log"), key=lambda f: f.stat().st_mtime, reverse=True) if folder.is_dir() else []
        file_backend = settings.EMAIL_BACKEND.endswith("filebased.EmailBackend")
        context = {**self.admin_site.each_context(request), "title": "Outbox", "opts": self.model._meta,
                   "files": [(f.name, f.stat().st_size) for f in files[:OUTBOX_LIMIT]], "total": len(files),
                   "file_backend": file_backend}
        return TemplateResponse(request, "admin/campaigns/outbox.html", context)

    def outbox_message_view(self, request, name: str):
        folder = self._outbox()
        target = folder / name
        if "/" in name or not name.endswith(".log") or not target.is_file():
            raise Http404("No such message file.")
        text = target.read_text(encoding="utf-8", errors="replace")[:400_000]
        context = {**self.admin_site.each_context(request), "title": f"Outbox: {name}", "opts": self.model._meta,
                   "text": text}
        return TemplateResponse(request, "admin/campaigns/outbox_message.html", context)

    # --- actions ------------------------------------------------------------------------------------

    @admin.action(description="Build selected campaigns (choose recipients and items)")
    def build_action(self, request, queryset):
        for campaign in queryset:
            if campaign.status in (Campaign.Status.SENDING, Campaign.Status.BUILDING):
                self.message_user(request, f"{campaign} is {campaign.get_status_display()}: wait until it finishes.",
                                  messages.ERROR)
                continue
            try:
                result = campaign_build(campaign=campaign)
            except CampaignStateError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"{campaign}: built run {result.run} for {result.customers:,} customers.")

    @admin.action(description="Send selected campaign (asks for confirmation)")
    def send_action(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select one campaign to send: each send is confirmed with its counts.",
                              messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_send", args=[queryset.get().pk]))

    @admin.action(description="Pause selected campaigns")
    def pause_action(self, request, queryset):
        for campaign in queryset:
            if campaign_pause(campaign=campaign):
                self.message_user(request, f"{campaign}: paused.")
            else:
                self.message_user(request, f"{campaign} is {campaign.get_status_display()}: only a scheduled, "
                                           "ready or sending campaign can be paused.", messages.ERROR)

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


class ReplyFilter(admin.SimpleListFilter):
    title = "reply"
    parameter_name = "reply"

    def lookups(self, request, model_admin):
        return [("opened", "opened"), ("clicked", "clicked"), ("bought", "bought a clicked item"),
                ("scanner", "clicked by a link scanner")]

    def queryset(self, request, queryset):
        field = {"opened": "opened_at", "clicked": "clicked_at", "bought": "converted_at"}.get(self.value() or "")
        if field:
            return queryset.filter(**{f"{field}__isnull": False})
        if self.value() == "scanner":
            return queryset.filter(click_flagged=True)
        return queryset


class ClickInline(ReadOnlyInline):
    """Clicks are evidence of what a customer did: never added, edited or deleted by hand."""

    model = Click
    fields = ("item", "clicked_at", "count", "scanner", "user_agent")

    @admin.display(description="counted?")
    def scanner(self, obj: Click) -> str:
        return f"no: looks like a link scanner ({obj.flag_reason or 'automated'})" if obj.flagged else "yes"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Recipient)
class RecipientAdmin(ReadOnlyAdmin):
    """A record of a send: never added, edited or deleted; in-doubt rows change only through the reconcile
    actions."""

    list_display = ("customer_display", "campaign", "state_display", "group", "sent_short", "reply", "preview_link")
    list_filter = (InDoubtFilter, ReplyFilter, "state", "skip_reason", "campaign")
    search_fields = ("email", "customer__external_id", "customer__first_name", "customer__last_name", "message_id")
    list_select_related = ("customer", "campaign")
    fields = ("campaign", "run", "customer_display", "email", "state_display", "group", "items_table", "message_id",
              "attempts", "error", "claimed_at", "sent_at", "failed_at", "opened_at", "clicked_at", "click_flagged",
              "converted_at", "revenue_display", "unsubscribed_at", "created_at", "preview_link")
    readonly_fields = fields
    inlines = [ClickInline]
    actions = ["mark_sent_action", "requeue_action"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.has_perm("campaigns.change_recipient"):
            actions.pop("mark_sent_action", None)
            actions.pop("requeue_action", None)
        return actions

    @admin.display(description="customer", ordering="customer__last_name")
    def customer_display(self, obj: Recipient) -> str:
        return customer_label(obj.customer)

    @admin.display(description="state", ordering="state")
    def state_display(self, obj: Recipient) -> str:
        text = obj.get_state_display()
        if obj.skip_reason:
            text += f": {obj.get_skip_reason_display()}"
        return format_html('<span title="{}">{}</span>', STATE_HELP.get(obj.state, ""), text)

    @admin.display(description="group", ordering="is_holdout")
    def group(self, obj: Recipient) -> str:
        if obj.is_holdout:
            return "holdout (kept out to measure)"
        return {Recipient.State.SENT: "e-mailed", Recipient.State.SKIPPED: "not e-mailed",
                Recipient.State.PENDING: "to be e-mailed"}.get(obj.state, "e-mail attempted")

    @admin.display(description="sent", ordering="sent_at")
    def sent_short(self, obj: Recipient) -> str:
        return short_datetime(obj.sent_at)

    @admin.display(description="reply")
    def reply(self, obj: Recipient) -> str:
        """What the customer did, in order: opened, clicked, bought (with the revenue)."""
        steps = [label for label, at in (("opened", obj.opened_at), ("clicked", obj.clicked_at)) if at]
        if obj.converted_at:
            steps.append(f"bought ({money(obj.revenue)})")
        if obj.click_flagged and not obj.clicked_at:
            steps.append("scanner clicks only")
        return ", ".join(steps) or ("no reply yet" if obj.state == Recipient.State.SENT else "n/a")

    @admin.display(description="revenue attributed")
    def revenue_display(self, obj: Recipient) -> str:
        return money(obj.revenue) if obj.converted_at else "n/a"

    @admin.display(description="items chosen")
    def items_table(self, obj: Recipient) -> str:
        return recipient_items_html(obj.items)

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
        context = {**self.admin_site.each_context(request), "recipient": recipient, "opts": self.model._meta,
                   "customer": customer_label(recipient.customer)}
        try:
            rendered = preview_without_tracking(recipient_render(recipient=recipient), recipient=recipient)
        except CampaignTemplateError as exc:
            context.update(title="Preview: cannot render", render_error=str(exc))
            return TemplateResponse(request, "admin/campaigns/recipient_preview.html", context)
        context.update(rendered=rendered, preview_html=rendered.html, title=f"Preview: {rendered.subject}")
        return TemplateResponse(request, "admin/campaigns/recipient_preview.html", context)

    def _reconcile(self, request, queryset, delivered: bool, label: str):
        in_doubt = queryset.filter(state=Recipient.State.SENDING)
        if not in_doubt.exists():
            self.message_user(request, "None of the selected recipients is in doubt: nothing to reconcile.",
                              messages.ERROR)
            return None
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


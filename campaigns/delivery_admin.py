"""Admin for deliverability: the suppression list (with a lift action that needs a note), provider
events, per-recipient delivery state and send waves (outbound webhooks: ``webhooks_admin``)."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from crm.admin import ReadOnlyAdmin

from .models import DeliveryEvent, RecipientDelivery, SendWave, Suppression
from .services.deliverability import suppression_lift


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ("email", "reason", "detail", "esp")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if "@" not in email:
            raise forms.ValidationError("Enter an e-mail address.")
        active = Suppression.objects.active().filter(email=email).exclude(pk=self.instance.pk)
        if active.exists():
            raise forms.ValidationError(f"{email} is already suppressed.")
        return email


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    form = SuppressionForm
    list_display = ("email", "reason", "created_at", "esp", "lifted_at", "lifted_by")
    list_filter = ("reason", ("lifted_at", admin.EmptyFieldListFilter), "esp")
    search_fields = ("email",)
    readonly_fields = ("created_at", "lifted_at", "lifted_by", "lift_note")
    fields = ("email", "reason", "detail", "esp", "created_at", "lifted_at", "lifted_by", "lift_note")
    actions = ["lift_action"]

    @admin.action(description="Lift the selected suppressions (asks for a note)")
    def lift_action(self, request, queryset):
        active = list(queryset.filter(lifted_at__isnull=True))
        note = (request.POST.get("note") or "").strip()
        if request.POST.get("post") == "yes" and note:
            lifted = sum(suppression_lift(suppression=s, note=note, by=request.user.get_username()) for s in active)
            self.message_user(request, f"Lifted {lifted} suppression(s).", messages.SUCCESS)
            return None
        if not active:
            self.message_user(request, "None of the selected suppressions is active.", messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "suppressions": active,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "error": "A note is required." if request.POST.get("post") == "yes" else "",
        }
        return TemplateResponse(request, "admin/campaigns/suppression/lift_confirmation.html", context)


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "esp", "event_type", "email", "bounce_kind", "machine", "outcome")
    list_filter = ("esp", "event_type", "bounce_kind", "machine")
    search_fields = ("email", "message_id", "event_id")
    raw_id_fields = ("recipient",)


@admin.register(RecipientDelivery)
class RecipientDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("recipient", "esp", "status", "status_at", "soft_bounces", "machine_opened_at")
    list_filter = ("status", "esp")
    search_fields = ("provider_message_id", "recipient__email")
    raw_id_fields = ("recipient",)


@admin.register(SendWave)
class SendWaveAdmin(admin.ModelAdmin):
    list_display = ("campaign", "send_at", "time_zones", "customers", "status", "started_at")
    list_filter = ("status",)
    raw_id_fields = ("campaign",)

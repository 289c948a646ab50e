"""Admin for deliverability: the suppression list (with a lift action that needs a note), provider
events, per-recipient delivery state, send waves, and outbound webhooks with their delivery log."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from .models import (
    DeliveryEvent,
    RecipientDelivery,
    SendWave,
    Suppression,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from .services.deliverability import suppression_lift
from .services.webhooks_out import EVENT_TYPES, webhook_delivery_requeue, webhook_url_validate


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
class DeliveryEventAdmin(admin.ModelAdmin):
    list_display = ("received_at", "esp", "event_type", "email", "bounce_kind", "machine", "outcome")
    list_filter = ("esp", "event_type", "bounce_kind", "machine")
    search_fields = ("email", "message_id", "event_id")
    raw_id_fields = ("recipient",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RecipientDelivery)
class RecipientDeliveryAdmin(admin.ModelAdmin):
    list_display = ("recipient", "esp", "status", "status_at", "soft_bounces", "machine_opened_at")
    list_filter = ("status", "esp")
    search_fields = ("provider_message_id", "recipient__email")
    raw_id_fields = ("recipient",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SendWave)
class SendWaveAdmin(admin.ModelAdmin):
    list_display = ("campaign", "send_at", "time_zones", "customers", "status", "started_at")
    list_filter = ("status",)
    raw_id_fields = ("campaign",)


class WebhookSubscriptionForm(forms.ModelForm):
    url = forms.CharField(max_length=1000, help_text="http:// or https:// only.")
    event_types = forms.MultipleChoiceField(
        choices=WebhookSubscription.EventType.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookSubscription
        fields = ("name", "url", "secret", "event_types", "active")
        widgets = {"secret": forms.PasswordInput(render_value=True)}

    def clean_url(self) -> str:
        try:
            return webhook_url_validate(self.cleaned_data["url"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_secret(self) -> str:
        secret = self.cleaned_data["secret"]
        if len(secret) < 16:
            raise forms.ValidationError("The secret must be at least 16 characters.")
        return secret

    def clean_event_types(self) -> list[str]:
        return sorted(set(self.cleaned_data["event_types"]) & set(EVENT_TYPES))


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    form = WebhookSubscriptionForm
    list_display = ("name", "url", "active", "created_at")
    list_filter = ("active",)
    search_fields = ("name", "url")


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("attempted_at", "status_code", "error", "duration_ms")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "subscription", "event_type", "status", "attempts", "last_status_code",
                    "next_attempt_at")
    list_filter = ("status", "event_type", "subscription")
    search_fields = ("event_id", "dedupe_key")
    readonly_fields = ("subscription", "event_id", "event_type", "dedupe_key", "payload", "status", "attempts",
                       "next_attempt_at", "last_status_code", "last_error", "delivered_at", "created_at")
    inlines = [WebhookAttemptInline]
    actions = ["requeue_action"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Requeue (dead letters: try again from the first attempt)")
    def requeue_action(self, request, queryset):
        from .tasks import webhook_deliver_task

        ids = list(queryset.values_list("pk", flat=True))
        requeued = webhook_delivery_requeue(delivery_ids=ids)
        for pk in ids:
            webhook_deliver_task.delay(pk)
        self.message_user(request, f"Requeued {requeued} deliveries.", messages.SUCCESS)

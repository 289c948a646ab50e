"""Admin for outbound webhooks: subscriptions (a URL, a secret, the event types) and the delivery log,
with a requeue action for dead letters."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from .models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from .services.webhooks_out import EVENT_TYPES, webhook_delivery_requeue, webhook_url_validate


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

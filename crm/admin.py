"""Admin pages a marketer works in: customers, the catalogue, events, feedback triage, segments.

Also the pieces the other apps' admins build on: ``ReadOnlyAdmin`` and ``ReadOnlyInline`` for rows that
are records, and ``CustomerAdmin.add_inline`` for a downstream app's inline on the customer page (crm
imports neither recommendations nor campaigns). Shared HTML fragments are in ``admin_html``.
"""
from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import InlineModelAdmin
from django.db import models
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import slugify

from .consent import customer_consent_record
from .models import ApiKey, ConsentEvent, Customer, ErasedCustomer, Feedback, Interaction, Item, Segment
from .segments import SegmentRuleError
from .selectors import customer_export, segment_evaluate, segment_preview
from .services import api_key_create, campaign_recipient_belongs_to, customer_erase, feedback_create

# Lists with a filter column need the width: the app list is one click away in the breadcrumbs.
admin.site.enable_nav_sidebar = False


class PrettyJSONField(forms.JSONField):
    """Objects are shown indented (readable rules and attributes); short lists stay on one line."""

    def prepare_value(self, value):
        if isinstance(value, dict) and value:
            return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)
        return super().prepare_value(value)


JSON_FIELD = {
    models.JSONField: {
        "form_class": PrettyJSONField,
        "widget": forms.Textarea(attrs={"rows": 10, "cols": 60, "class": "tailored-json"}),
    }
}


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by jobs or kept as records: viewable, never added or edited by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    """A compact table of related rows on a change page, every listed field read-only, no empty forms."""

    extra = 0
    max_num = 0
    can_delete = False
    classes = ("tailored-compact",)

    def get_readonly_fields(self, request, obj=None):
        return self.fields


class RecentInteractionInline(ReadOnlyInline):
    model = Interaction
    fields = ("occurred_at", "kind", "item", "value", "quantity", "source")
    ordering = ("-occurred_at",)
    show_change_link = True
    verbose_name_plural = "recent interactions (latest 20)"

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("item")
        # An inline cannot slice its queryset, so keep only the ids of the latest 20 per customer page.
        customer_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if customer_id:
            latest = list(
                qs.filter(customer_id=customer_id).order_by("-occurred_at", "-id").values_list("id", flat=True)[:20]
            )
            qs = qs.filter(id__in=latest)
        return qs


class SegmentFilter(admin.SimpleListFilter):
    """Narrow the customer list to a saved segment's current audience (linked from the segment page)."""

    title = "segment"
    parameter_name = "segment"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in Segment.objects.values_list("pk", "name")]

    def queryset(self, request, queryset):
        segment = Segment.objects.filter(pk=self.value()).first() if (self.value() or "").isdigit() else None
        if segment is None:
            return queryset
        try:
            return queryset.filter(pk__in=segment_evaluate(segment=segment).values("pk"))
        except SegmentRuleError:
            return queryset.none()


class ConsentFilter(admin.SimpleListFilter):
    title = "e-mail consent"
    parameter_name = "consent"

    def lookups(self, request, model_admin):
        return [("contactable", "contactable"), ("unsubscribed", "unsubscribed"), ("no_opt_in", "no opt-in")]

    def queryset(self, request, queryset):
        if self.value() == "contactable":
            return queryset.contactable()
        if self.value() == "unsubscribed":
            return queryset.filter(unsubscribed_at__isnull=False)
        if self.value() == "no_opt_in":
            return queryset.filter(email_opt_in=False, unsubscribed_at__isnull=True)
        return queryset


def _per_customer(model, *, aggregate=None, field: str = "customer"):
    """A correlated subquery: evaluated for the page's rows only, not a GROUP BY over every event."""
    rows = model.objects.filter(**{field: OuterRef("pk")}).order_by()
    if aggregate is None:
        counted = rows.values(field).annotate(n=Count("pk")).values("n")
        return Coalesce(Subquery(counted, output_field=IntegerField()), 0)
    return Subquery(rows.order_by(aggregate).values(aggregate.lstrip("-"))[:1])


class ConsentEventInline(ReadOnlyInline):
    """The customer's consent history (read-only: consent changes through the actions above the list)."""

    model = ConsentEvent
    fields = ("created_at", "action", "channel", "source", "actor")
    verbose_name_plural = "consent history"


class ConsentActionForm(helpers.ActionForm):
    consent_source = forms.CharField(
        required=False, max_length=200, label="consent source",
        help_text="For consent actions: where the customer gave or withdrew consent (e.g. 'phone call').",
    )


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("external_id", "full_name", "email", "country", "contactable", "event_count", "last_seen")
    list_display_links = ("external_id", "full_name")
    list_filter = (ConsentFilter, SegmentFilter, "country", "created_at")
    search_fields = ("external_id", "email", "first_name", "last_name")
    actions = ("record_opt_in", "record_opt_out", "export_personal_data", "erase_personal_data")
    action_form = ConsentActionForm
    # Consent is changed only by the consent actions (recorded as consent events), never by editing.
    readonly_fields = ("created_at", "updated_at", "email_opt_in", "unsubscribed_at", "consent_updated_at")
    fieldsets = (
        (None, {"fields": ("external_id", "email", "first_name", "last_name", "country")}),
        ("Consent", {"fields": ("email_opt_in", "unsubscribed_at", "consent_updated_at")}),
        ("Attributes", {"fields": ("attributes",), "classes": ("collapse",)}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )
    inlines = [ConsentEventInline, RecentInteractionInline]
    list_per_page = 50
    show_full_result_count = False
    formfield_overrides = JSON_FIELD

    @classmethod
    def add_inline(cls, inline: type[InlineModelAdmin]) -> None:
        """Show ``inline`` on the customer page, after crm's own: how a downstream app adds to this page,
        from its ``AppConfig.ready()`` (``recommendations`` adds the serving recommendations). Adding the
        same inline again changes nothing; Django's system checks cover added inlines like crm's own."""
        if inline not in cls.inlines:
            cls.inlines = [*cls.inlines, inline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _event_count=_per_customer(Interaction),
                _last_seen=_per_customer(Interaction, aggregate="-occurred_at"),
            )
        )

    @admin.display(description="name")
    def full_name(self, obj: Customer) -> str:
        return obj.full_name

    @admin.display(boolean=True, description="contactable")
    def contactable(self, obj: Customer) -> bool:
        return obj.is_contactable

    @admin.display(description="events", ordering="_event_count")
    def event_count(self, obj: Customer) -> int:
        return obj._event_count

    @admin.display(description="last seen", ordering="_last_seen", empty_value="never")
    def last_seen(self, obj: Customer):
        return obj._last_seen

    # Django's own delete (the button, "delete selected") erases too: tombstone, models, admin log.
    def delete_model(self, request, obj: Customer) -> None:
        customer_erase(customer=obj)

    def delete_queryset(self, request, queryset) -> None:
        for customer in queryset:
            customer_erase(customer=customer)

    def response_delete(self, request, obj_display, obj_id):
        """No name in the success message: messages travel in a cookie and must not outlive the erasure."""
        self.message_user(request, "The customer was erased.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:crm_customer_changelist"))

    # --- consent: explicit, recorded changes only ----------------------------------------------------

    def _record_consent(self, request, queryset, action: str) -> None:
        source = (request.POST.get("consent_source") or "").strip()
        if not source:
            self.message_user(request, "Say where the consent came from (consent source) first.", messages.ERROR)
            return
        actor = f"staff user {request.user.get_username()}"
        n = 0
        for customer in queryset:
            customer_consent_record(
                customer=customer, action=action, channel=ConsentEvent.Channel.ADMIN, source=source, actor=actor
            )
            n += 1
        self.message_user(request, f"Recorded '{ConsentEvent.Action(action).label}' for {n} customer(s).",
                          messages.SUCCESS)

    @admin.action(description="Record e-mail opt-in (the customer asked; give the source)", permissions=["change"])
    def record_opt_in(self, request, queryset):
        self._record_consent(request, queryset, ConsentEvent.Action.OPT_IN)

    @admin.action(description="Record e-mail opt-out (give the source)", permissions=["change"])
    def record_opt_out(self, request, queryset):
        self._record_consent(request, queryset, ConsentEvent.Action.OPT_OUT)

    # --- privacy: data-subject access and erasure requests --------------------------------------------

    @admin.action(description="Export personal data (JSON)", permissions=["view"])
    def export_personal_data(self, request, queryset):
        exports = [customer_export(customer=c) for c in queryset.order_by("external_id")]
        single = len(exports) == 1
        name = f"customer-{slugify(exports[0]['customer']['external_id'])}" if single else "customers"
        body = json.dumps(exports[0] if single else {"customers": exports}, indent=2, ensure_ascii=False)
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}-personal-data.json"'
        return response

    @admin.action(description="Erase personal data (asks for confirmation)", permissions=["delete"])
    def erase_personal_data(self, request, queryset):
        if request.POST.get("post") == "yes":
            n = 0
            for customer in queryset:
                customer_erase(customer=customer)
                n += 1
            # No ids or names in the message: it is stored in a cookie and must not outlive the erasure.
            self.message_user(request, f"Erased {n} customer(s).", messages.SUCCESS)
            return None
        customers = queryset.annotate(
            n_interactions=_per_customer(Interaction), n_feedback=_per_customer(Feedback)
        ).order_by("external_id")
        context = {
            **self.admin_site.each_context(request),
            "title": "Erase personal data?",
            "opts": self.model._meta,
            "customers": customers,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/crm/customer/erase_confirmation.html", context)


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("sku", "title", "category", "price_display", "active", "in_stock", "updated_at")
    list_display_links = ("sku", "title")
    list_filter = ("active", "in_stock", "category", "updated_at")
    list_editable = ("active", "in_stock")
    search_fields = ("sku", "title", "description", "category")
    readonly_fields = ("image_preview", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("sku", "title", "description", "category", "tags")}),
        ("Commerce", {"fields": ("price", "currency", "active", "in_stock")}),
        ("Links", {"fields": ("url", "image_url", "image_preview")}),
        ("Attributes", {"fields": ("attributes",), "classes": ("collapse",)}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )
    actions = ("activate", "deactivate", "mark_in_stock", "mark_out_of_stock")
    list_per_page = 50
    formfield_overrides = {**JSON_FIELD, models.URLField: {"assume_scheme": "https"}}

    @admin.display(description="price", ordering="price")
    def price_display(self, obj: Item) -> str:
        return "—" if obj.price is None else f"{obj.price:,.2f} {obj.currency}"

    @admin.display(description="image")
    def image_preview(self, obj: Item) -> str:
        if not obj.image_url:
            return "—"
        return format_html('<img src="{}" alt="" class="tailored-item-image">', obj.image_url)

    def _bulk_update(self, request, queryset, message: str, **fields) -> None:
        n = queryset.update(**fields)
        self.message_user(request, f"{n} item(s) {message}.", messages.SUCCESS)

    @admin.action(description="Activate selected items")
    def activate(self, request, queryset):
        self._bulk_update(request, queryset, "activated", active=True)

    @admin.action(description="Deactivate selected items (no longer recommended)")
    def deactivate(self, request, queryset):
        self._bulk_update(request, queryset, "deactivated", active=False)

    @admin.action(description="Mark selected items in stock")
    def mark_in_stock(self, request, queryset):
        self._bulk_update(request, queryset, "marked in stock", in_stock=True)

    @admin.action(description="Mark selected items out of stock")
    def mark_out_of_stock(self, request, queryset):
        self._bulk_update(request, queryset, "marked out of stock", in_stock=False)


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "customer", "kind", "item", "value", "quantity", "order_id", "source")
    list_filter = ("kind", "source", "excluded_from_training", "occurred_at")
    search_fields = ("customer__external_id", "customer__email", "item__sku", "item__title", "event_id", "=order_id")
    raw_id_fields = ("customer", "item")
    date_hierarchy = "occurred_at"
    list_select_related = ("customer", "item")
    readonly_fields = ("created_at",)
    show_full_result_count = False
    list_per_page = 100


class FeedbackForm(forms.ModelForm):
    class Meta:
        model = Feedback
        fields = ["customer", "item", "kind", "comment", "status", "source", "campaign_recipient_id"]

    def clean(self):
        cleaned = super().clean()
        recipient_id, customer = cleaned.get("campaign_recipient_id"), cleaned.get("customer")
        if recipient_id and customer and not campaign_recipient_belongs_to(
            recipient_id=recipient_id, customer=customer
        ):
            self.add_error("campaign_recipient_id", f"Campaign recipient {recipient_id} is not this customer's.")
        return cleaned


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    form = FeedbackForm
    list_display = ("created_at", "kind", "status_badge", "customer", "item", "source", "short_comment")
    list_filter = ("status", "kind", "source", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("customer__external_id", "customer__email", "item__sku", "item__title", "comment")
    raw_id_fields = ("customer", "item")
    list_select_related = ("customer", "item")
    actions = ("mark_reviewed", "mark_actioned", "dismiss", "deactivate_items")
    readonly_fields = ("created_at", "updated_at")

    def get_changeform_initial_data(self, request):
        return {"source": Feedback.Source.ADMIN, **super().get_changeform_initial_data(request)}

    def save_model(self, request, obj, form, change):
        """New feedback goes through ``feedback_create``, so downstream apps hear about it (e.g. a
        "not interested" entered here drops the item from the customer's stored recommendations)."""
        if change:
            return super().save_model(request, obj, form, change)
        created = feedback_create(
            customer=obj.customer, kind=obj.kind, item=obj.item, comment=obj.comment, source=obj.source,
            campaign_recipient_id=obj.campaign_recipient_id,
        )
        if obj.status != created.status:
            Feedback.objects.filter(pk=created.pk).update(status=obj.status)
        obj.pk, obj.created_at, obj._state.adding = created.pk, created.created_at, False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Feedback) -> str:
        return format_html('<span class="tailored-badge {}">{}</span>', obj.status, obj.get_status_display())

    @admin.display(description="comment")
    def short_comment(self, obj: Feedback) -> str:
        return (obj.comment[:80] + "…") if len(obj.comment) > 80 else obj.comment

    def _set_status(self, request, queryset, status: str) -> None:
        n = queryset.update(status=status)
        self.message_user(request, f"{n} feedback entr{'y' if n == 1 else 'ies'} marked {status}.", messages.SUCCESS)

    @admin.action(description="Mark reviewed")
    def mark_reviewed(self, request, queryset):
        self._set_status(request, queryset, Feedback.Status.REVIEWED)

    @admin.action(description="Mark actioned")
    def mark_actioned(self, request, queryset):
        self._set_status(request, queryset, Feedback.Status.ACTIONED)

    @admin.action(description="Dismiss")
    def dismiss(self, request, queryset):
        self._set_status(request, queryset, Feedback.Status.DISMISSED)

    @admin.action(description="Deactivate the items these complaints are about")
    def deactivate_items(self, request, queryset):
        item_ids = queryset.exclude(item__isnull=True).values_list("item_id", flat=True)
        n = Item.objects.filter(id__in=list(item_ids)).update(active=False)
        queryset.update(status=Feedback.Status.ACTIONED)
        self.message_user(request, f"{n} item(s) deactivated.", messages.SUCCESS)


RULES_HELP = (
    'JSON: {"match": "all"|"any", "conditions": [...]}. Fields: country (op in/not_in, value [codes]), '
    "consent (value true/false), attribute (key, op eq/ne/in/exists/gt/gte/lt/lte, value), "
    "purchased_within_days (value N), no_purchase_within_days (value N), interacted_with_category "
    "(value, days?, kinds?), min_orders (value N, days?), joined_within_days (value N)."
)


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "audience_size", "updated_at")
    search_fields = ("name", "description")
    readonly_fields = ("preview", "created_at", "updated_at")
    fields = ("name", "description", "rules", "preview", "created_at", "updated_at")
    formfield_overrides = JSON_FIELD

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.base_fields["rules"].help_text = RULES_HELP
        return form

    @admin.display(description="customers")
    def audience_size(self, obj: Segment) -> str:
        try:
            return f"{segment_preview(segment=obj, sample_size=0).count:,}"
        except SegmentRuleError as exc:
            return f"invalid rules: {exc}"

    @admin.display(description="preview")
    def preview(self, obj: Segment) -> str:
        if obj.pk is None:
            return "Save the segment to preview its audience."
        try:
            result = segment_preview(segment=obj, sample_size=10)
        except SegmentRuleError as exc:
            return f"Invalid rules: {exc}"
        rows = format_html_join(
            "",
            "<li>{} — {} ({})</li>",
            ((c.external_id, c.full_name or c.email or "no name", c.country or "no country") for c in result.sample),
        )
        customers_url = reverse("admin:crm_customer_changelist") + f"?segment={obj.pk}"
        return format_html(
            '<div class="tailored-segment-preview"><strong>{} customers</strong> match these rules right now. '
            'Newest 10:<ul>{}</ul><a href="{}">Open them in the customer list &rarr;</a></div>',
            f"{result.count:,}",
            rows,
            customers_url,
        )


# --- API keys (the raw key is shown once, on creation) --------------------------------------------


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple,
        help_text="admin implies read and write.",
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "is_active"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "prefix", "scopes", "is_active", "created_at", "last_used_at", "created_by"]
    list_filter = ["is_active"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "created_by"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        created, raw_key = api_key_create(name=obj.name, scopes=list(obj.scopes), created_by=request.user)
        if not obj.is_active:
            ApiKey.objects.filter(pk=created.pk).update(is_active=False)
        obj.pk, obj.prefix, obj.hashed_key = created.pk, created.prefix, created.hashed_key
        obj._state.adding = False
        request._tailored_raw_api_key = raw_key  # shown by response_add, on this response only

    def response_add(self, request, obj, post_url_continue=None):
        """The raw key is shown once, in this page's body (never stored, never in the messages cookie)."""
        raw_key = getattr(request, "_tailored_raw_api_key", None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "title": "Copy the new API key now",
            "opts": self.model._meta,
            "api_key": obj,
            "raw_key": raw_key,
            "list_url": reverse("admin:crm_apikey_changelist"),
        }
        response = TemplateResponse(request, "admin/crm/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response


@admin.register(ErasedCustomer)
class ErasedCustomerAdmin(ReadOnlyAdmin):
    """Tombstones of erased customers (hashes only). Delete one to let that external id back in."""

    list_display = ("external_id_hash", "erased_at")
    readonly_fields = ("external_id_hash", "erased_at")
    search_fields = ("external_id_hash",)

"""django-filter FilterSets for the API's list endpoints (query parameters are documented in the schema)."""
from __future__ import annotations

import datetime

import django_filters as filters
from django import forms
from django_filters.fields import IsoDateTimeField

from .models import Customer, Feedback, Interaction, Item

OUT_OF_RANGE = "This instant is outside the supported range (years 1 to 9999 in UTC)."


class UtcIsoDateTimeField(IsoDateTimeField):
    """ISO 8601 with any UTC offset, moved to UTC before it reaches the database.

    PostgreSQL refuses offsets beyond +-15:59 that Python parses (``+18:24``), and an instant at the
    edge of year 1 or 9999 cannot be moved to UTC at all: both were 500s (bench/drill_fuzz.py).
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(datetime.UTC)
        except OverflowError as exc:
            raise forms.ValidationError(OUT_OF_RANGE, code="invalid") from exc


class UtcIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class CustomerFilter(filters.FilterSet):
    country = filters.CharFilter(field_name="country", lookup_expr="iexact")
    email = filters.CharFilter(field_name="email", lookup_expr="iexact")
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Customer
        fields = ["country", "email", "email_opt_in"]


class ItemFilter(filters.FilterSet):
    category = filters.CharFilter(field_name="category", lookup_expr="iexact")
    min_price = filters.NumberFilter(field_name="price", lookup_expr="gte")
    max_price = filters.NumberFilter(field_name="price", lookup_expr="lte")
    updated_after = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Item
        fields = ["category", "active", "in_stock"]


class InteractionFilter(filters.FilterSet):
    customer = filters.CharFilter(field_name="customer__external_id", help_text="Customer external_id.")
    item = filters.CharFilter(field_name="item__sku", help_text="Item SKU.")
    kind = filters.MultipleChoiceFilter(choices=Interaction.Kind.choices)
    source = filters.ChoiceFilter(choices=Interaction.Source.choices)
    since = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Interaction
        fields = ["customer", "item", "kind", "source"]


class FeedbackFilter(filters.FilterSet):
    customer = filters.CharFilter(field_name="customer__external_id", help_text="Customer external_id.")
    item = filters.CharFilter(field_name="item__sku", help_text="Item SKU.")
    kind = filters.MultipleChoiceFilter(choices=Feedback.Kind.choices)
    status = filters.ChoiceFilter(choices=Feedback.Status.choices)
    source = filters.ChoiceFilter(choices=Feedback.Source.choices)
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Feedback
        fields = ["customer", "item", "kind", "status", "source"]

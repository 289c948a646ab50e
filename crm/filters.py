"""django-filter FilterSets for the API's list endpoints (query parameters are documented in the schema)."""
from __future__ import annotations

import datetime

import django_filters as filters
from django import forms
from django_filters.fields import IsoDateTimeField

from .models import Customer, Feedback, Interaction, Item

FILTER_RANGE = "Date-time filters must be between the years 1900 and 2999."


class SaneIsoDateTimeField(IsoDateTimeField):
    """ISO 8601 with any UTC offset, moved to UTC before it reaches the database, within 1900..2999.

    PostgreSQL refuses offsets beyond +-15:59 that Python parses (``+18:24``), and year 0001 or 9999
    with an offset overflows when moved to UTC: both were 500s (bench/drill_fuzz.py, the security
    review). The range is wider than the one accepted for stored timestamps: "until 2100" is a fair query.
    """

    def strptime(self, value, format):
        try:
            return super().strptime(value, format)
        except OverflowError as exc:
            raise ValueError(FILTER_RANGE) from exc

    def to_python(self, value):
        try:
            value = super().to_python(value)
        except OverflowError as exc:
            raise forms.ValidationError(FILTER_RANGE, code="invalid") from exc
        if value is None:
            return None
        if not 1900 <= value.year <= 2999:
            raise forms.ValidationError(FILTER_RANGE, code="invalid")
        try:
            return value.astimezone(datetime.UTC)
        except OverflowError as exc:
            raise forms.ValidationError(FILTER_RANGE, code="invalid") from exc


class IsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = SaneIsoDateTimeField


class ChangedSinceFilterSet(filters.FilterSet):
    """``updated_after``: how an integration polls for the rows changed since it last looked."""

    updated_after = IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")


class CustomerItemFilterSet(filters.FilterSet):
    """Rows about a customer and an item, named by their external keys."""

    customer = filters.CharFilter(field_name="customer__external_id", help_text="Customer external_id.")
    item = filters.CharFilter(field_name="item__sku", help_text="Item SKU.")


class CustomerFilter(ChangedSinceFilterSet):
    country = filters.CharFilter(field_name="country", lookup_expr="iexact")
    email = filters.CharFilter(field_name="email", lookup_expr="iexact")
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Customer
        fields = ["country", "email", "email_opt_in"]


class ItemFilter(ChangedSinceFilterSet):
    category = filters.CharFilter(field_name="category", lookup_expr="iexact")
    min_price = filters.NumberFilter(field_name="price", lookup_expr="gte")
    max_price = filters.NumberFilter(field_name="price", lookup_expr="lte")

    class Meta:
        model = Item
        fields = ["category", "active", "in_stock"]


class InteractionFilter(CustomerItemFilterSet):
    kind = filters.MultipleChoiceFilter(choices=Interaction.Kind.choices)
    source = filters.ChoiceFilter(choices=Interaction.Source.choices)
    order_id = filters.CharFilter(help_text="The lines of one order.")
    since = IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Interaction
        fields = ["customer", "item", "kind", "source"]


class FeedbackFilter(CustomerItemFilterSet):
    kind = filters.MultipleChoiceFilter(choices=Feedback.Kind.choices)
    status = filters.ChoiceFilter(choices=Feedback.Status.choices)
    source = filters.ChoiceFilter(choices=Feedback.Source.choices)
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Feedback
        fields = ["customer", "item", "kind", "status", "source"]

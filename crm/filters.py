"""django-filter FilterSets for the API's list endpoints (query parameters are documented in the schema)."""
from __future__ import annotations

import django_filters as filters

from .models import Customer, Feedback, Interaction, Item


class CustomerFilter(filters.FilterSet):
    country = filters.CharFilter(field_name="country", lookup_expr="iexact")
    email = filters.CharFilter(field_name="email", lookup_expr="iexact")
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Customer
        fields = ["country", "email", "email_opt_in"]


class ItemFilter(filters.FilterSet):
    category = filters.CharFilter(field_name="category", lookup_expr="iexact")
    min_price = filters.NumberFilter(field_name="price", lookup_expr="gte")
    max_price = filters.NumberFilter(field_name="price", lookup_expr="lte")
    updated_after = filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Item
        fields = ["category", "active", "in_stock"]


class InteractionFilter(filters.FilterSet):
    customer = filters.CharFilter(field_name="customer__external_id", help_text="Customer external_id.")
    item = filters.CharFilter(field_name="item__sku", help_text="Item SKU.")
    kind = filters.MultipleChoiceFilter(choices=Interaction.Kind.choices)
    source = filters.ChoiceFilter(choices=Interaction.Source.choices)
    order_id = filters.CharFilter(help_text="The lines of one order.")
    since = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Interaction
        fields = ["customer", "item", "kind", "source"]


class FeedbackFilter(filters.FilterSet):
    customer = filters.CharFilter(field_name="customer__external_id", help_text="Customer external_id.")
    item = filters.CharFilter(field_name="item__sku", help_text="Item SKU.")
    kind = filters.MultipleChoiceFilter(choices=Feedback.Kind.choices)
    status = filters.ChoiceFilter(choices=Feedback.Status.choices)
    source = filters.ChoiceFilter(choices=Feedback.Source.choices)
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Feedback
        fields = ["customer", "item", "kind", "status", "source"]

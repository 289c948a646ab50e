"""Segment rules: a small, validated JSON language that evaluates to a Customer queryset.

A rule set is ``{"match": "all" | "any", "conditions": [condition, ...]}``. Each condition is a
dict with a ``field`` and the keys that field takes:

- ``country``: the customer's country is (not) one of the codes. Keys ``op`` (in/not_in), ``value``.
- ``consent``: the customer is (not) contactable by e-mail. Key ``value`` (true/false).
- ``attribute``: a key of ``Customer.attributes``. Keys ``key``, ``op``, ``value``.
- ``purchased_within_days``: at least one purchase in the last ``value`` days.
- ``no_purchase_within_days``: no purchase in the last ``value`` days (lapsed customers).
- ``interacted_with_category``: any interaction with items of category ``value``; optional
  ``days`` and ``kinds``.
- ``min_orders``: at least ``value`` orders, optionally within the last ``days``. An order is one
  basket: the purchase lines sharing an ``order_id``, or (lines without one) sharing a timestamp.
- ``joined_within_days``: the customer was created in the last ``value`` days.

Attribute ops: ``eq``, ``ne``, ``in``, ``exists``, ``gt``, ``gte``, ``lt``, ``lte``. Attribute keys are
plain names: a key containing ``__`` would be read by the ORM as a lookup (``tier__regex``) and is
refused. Day counts are at most ``MAX_DAYS`` (10 years) and counts at most ``MAX_COUNT``, so date
arithmetic never overflows. An empty rule set matches every customer.
"""
from __future__ import annotations

import operator
from datetime import timedelta
from functools import reduce
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from .models import Customer, Interaction

MATCH_MODES = ("all", "any")
MAX_DAYS = 3650
MAX_COUNT = 1_000_000
MAX_KEY_LENGTH = 100
DAY_KEYS = {"days", "purchased_within_days", "no_purchase_within_days", "joined_within_days"}
ATTRIBUTE_OPS = ("eq", "ne", "in", "exists", "gt", "gte", "lt", "lte")
FIELDS = (
    "country",
    "consent",
    "attribute",
    "purchased_within_days",
    "no_purchase_within_days",
    "interacted_with_category",
    "min_orders",
    "joined_within_days",
)


class SegmentRuleError(ValueError):
    """A rule set that cannot be evaluated; the message says which condition and why."""


def _positive_int(
    condition: dict, key: str, where: str, *, required: bool = True, maximum: int = MAX_COUNT
) -> int | None:
    value = condition.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SegmentRuleError(f"{where}: '{key}' must be a non-negative integer, got {value!r}.")
    if value > maximum:
        raise SegmentRuleError(f"{where}: '{key}' must be at most {maximum}, got {value!r}.")
    return value


def _validate_condition(condition: Any, where: str) -> None:
    if not isinstance(condition, dict):
        raise SegmentRuleError(f"{where}: a condition must be an object.")
    field = condition.get("field")
    if field not in FIELDS:
        raise SegmentRuleError(f"{where}: unknown field {field!r}; use one of {', '.join(FIELDS)}.")
    if field == "country":
        if condition.get("op", "in") not in ("in", "not_in"):
            raise SegmentRuleError(f"{where}: country op must be 'in' or 'not_in'.")
        value = condition.get("value")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SegmentRuleError(f"{where}: country value must be a list of country codes.")
    elif field == "consent":
        if not isinstance(condition.get("value", True), bool):
            raise SegmentRuleError(f"{where}: consent value must be true or false.")
    elif field == "attribute":
        key = condition.get("key")
        if not isinstance(key, str) or not key:
            raise SegmentRuleError(f"{where}: attribute conditions need a 'key'.")
        if "__" in key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
            raise SegmentRuleError(
                f"{where}: attribute key {key[:MAX_KEY_LENGTH]!r} must not contain '__' (and be at most "
                f"{MAX_KEY_LENGTH} characters)."
            )
        if condition.get("op", "eq") not in ATTRIBUTE_OPS:
            raise SegmentRuleError(f"{where}: attribute op must be one of {', '.join(ATTRIBUTE_OPS)}.")
        if condition.get("op") == "in" and not isinstance(condition.get("value"), list):
            raise SegmentRuleError(f"{where}: the 'in' op needs a list value.")
    elif field == "interacted_with_category":
        if not isinstance(condition.get("value"), str) or not condition["value"]:
            raise SegmentRuleError(f"{where}: interacted_with_category needs a category name as 'value'.")
        _positive_int(condition, "days", where, required=False, maximum=MAX_DAYS)
        kinds = condition.get("kinds")
        if kinds is not None and (not isinstance(kinds, list) or set(kinds) - set(Interaction.Kind.values)):
            raise SegmentRuleError(f"{where}: kinds must be a list of {', '.join(Interaction.Kind.values)}.")
    elif field == "min_orders":
        _positive_int(condition, "value", where)
        _positive_int(condition, "days", where, required=False, maximum=MAX_DAYS)
    else:
        _positive_int(condition, "value", where, maximum=MAX_DAYS if field in DAY_KEYS else MAX_COUNT)


def validate_rules(rules: Any) -> None:
    """Raise SegmentRuleError naming the first bad condition; accept an empty rule set."""
    if rules in (None, {}):
        return
    if not isinstance(rules, dict):
        raise SegmentRuleError("Rules must be an object with 'match' and 'conditions'.")
    unknown = set(rules) - {"match", "conditions"}
    if unknown:
        raise SegmentRuleError(f"Unknown keys in rules: {', '.join(sorted(unknown))}.")
    if rules.get("match", "all") not in MATCH_MODES:
        raise SegmentRuleError("'match' must be 'all' or 'any'.")
    conditions = rules.get("conditions", [])
    if not isinstance(conditions, list):
        raise SegmentRuleError("'conditions' must be a list.")
    for index, condition in enumerate(conditions, start=1):
        _validate_condition(condition, f"condition {index}")


def _since(days: int):
    return timezone.now() - timedelta(days=days)


def _customers_with(interactions: QuerySet) -> Q:
    return Q(pk__in=interactions.values("customer_id"))


def _attribute_q(condition: dict) -> Q:
    key, op, value = condition["key"], condition.get("op", "eq"), condition.get("value")
    lookup = f"attributes__{key}"
    if op == "exists":
        return Q(**{"attributes__has_key": key}) if value is not False else ~Q(attributes__has_key=key)
    if op == "ne":
        # Customers without the key are "not equal" too (NOT (NULL = x) is NULL in SQL, not true).
        return ~Q(**{lookup: value}) | ~Q(attributes__has_key=key)
    if op == "eq":
        return Q(**{lookup: value})
    return Q(**{f"{lookup}__{op}": value})


def _condition_q(condition: dict) -> Q:
    field = condition["field"]
    purchases = Interaction.objects.filter(kind=Interaction.Kind.PURCHASE)
    if field == "country":
        q = Q(country__in=[c.upper() for c in condition["value"]])
        return ~q if condition.get("op", "in") == "not_in" else q
    if field == "consent":
        q = Q(email_opt_in=True, unsubscribed_at__isnull=True) & ~Q(email="")
        return q if condition.get("value", True) else ~q
    if field == "attribute":
        return _attribute_q(condition)
    if field == "purchased_within_days":
        return _customers_with(purchases.filter(occurred_at__gte=_since(condition["value"])))
    if field == "no_purchase_within_days":
        return ~_customers_with(purchases.filter(occurred_at__gte=_since(condition["value"])))
    if field == "interacted_with_category":
        events = Interaction.objects.filter(item__category__iexact=condition["value"])
        if condition.get("days") is not None:
            events = events.filter(occurred_at__gte=_since(condition["days"]))
        if condition.get("kinds"):
            events = events.filter(kind__in=condition["kinds"])
        return _customers_with(events)
    if field == "min_orders":
        if condition["value"] == 0:
            return Q()
        if condition.get("days") is not None:
            purchases = purchases.filter(occurred_at__gte=_since(condition["days"]))
        heavy = (
            purchases.values("customer_id")
            .annotate(
                n=Count("order_id", distinct=True, filter=~Q(order_id=""))
                + Count("occurred_at", distinct=True, filter=Q(order_id=""))
            )
            .filter(n__gte=condition["value"])
            .values("customer_id")
        )
        return Q(pk__in=heavy)
    if field == "joined_within_days":
        return Q(created_at__gte=_since(condition["value"]))
    raise SegmentRuleError(f"unknown field {field!r}")  # unreachable after validate_rules


def segment_queryset(rules: dict | None) -> QuerySet[Customer]:
    """Evaluate a rule set to a Customer queryset (validated first)."""
    validate_rules(rules)
    conditions = (rules or {}).get("conditions", [])
    if not conditions:
        return Customer.objects.all()
    qs = [_condition_q(c) for c in conditions]
    combine = operator.and_ if (rules or {}).get("match", "all") == "all" else operator.or_
    return Customer.objects.filter(reduce(combine, qs)).distinct()

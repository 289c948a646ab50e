"""Input checks shared by the API serializers, and the fast validator for bulk events.

Bulk interaction ingest skips per-event DRF serializers (too slow at 10,000 events per request):
``events_validate`` checks plain dicts in one pass and reports errors as
``{"events[3].kind": ["..."]}`` so the response stays in the API's error shape.
"""
from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from crm.models import MAX_ORDER_ID_LENGTH, Interaction

KINDS = frozenset(Interaction.Kind.values)
SOURCES = frozenset(Interaction.Source.values)
MAX_KEY_LENGTH = 191
MAX_QUANTITY = 2_147_483_647
MAX_JSON_DEPTH = 20
NUL_IN_JSON = "Text must not contain NUL (\\u0000) characters."
TOO_DEEP = f"JSON nested more than {MAX_JSON_DEPTH} levels."
NOT_AN_OBJECT = "Expected a JSON object."
ORDER_ID_CONTROL = "Expected an order id without control characters."

# Timestamps outside [1970-01-01, now + 1 day] are refused: year 0001 / 9999 values overflow time
# arithmetic (training timestamps, "within N days" rules) and a future event is a clock or client bug.
EARLIEST_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)
TIMESTAMP_OUT_OF_RANGE = "Timestamps must be between 1970-01-01 and one day from now (UTC)."
# Natural keys (external_id, sku) appear in URLs: no '/', '\\', '?', '#', '%', control characters or
# surrounding whitespace, so every stored key can be read and erased through the API.
UNSAFE_KEY = re.compile(r"[/\\?#%\x00-\x1f\x7f]")
UNSAFE_KEY_MESSAGE = "Ids must not contain '/', '\\', '?', '#', '%', control characters or surrounding spaces."
ATTRIBUTES_TOO_LARGE = "attributes is {size} bytes as JSON; the limit is {limit}."
# What a text column cannot store: NUL, and lone UTF-16 surrogates (JSON "\\ud800" escapes). One regex
# search in C instead of a Python loop per character: the bulk event path checks 3 strings per event.
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def text_is_storable(value: str) -> bool:
    return UNSTORABLE_TEXT.search(value) is None


def timestamp_in_range(value: datetime, *, now: datetime | None = None) -> bool:
    latest = (now or timezone.now()) + FUTURE_TOLERANCE
    return EARLIEST_TIMESTAMP <= value <= latest


def key_is_safe(value: str) -> bool:
    return bool(value) and value == value.strip() and not UNSAFE_KEY.search(value)


class SafeKeyField(serializers.CharField):
    """An external id or SKU: safe in a URL path segment (see ``UNSAFE_KEY``)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not key_is_safe(value):
            raise serializers.ValidationError(UNSAFE_KEY_MESSAGE)
        return value


class SaneDateTimeField(serializers.DateTimeField):
    """A date-time between 1970-01-01 and one day from now."""

    def to_internal_value(self, value):
        parsed = super().to_internal_value(value)
        if not timestamp_in_range(parsed):
            raise serializers.ValidationError(TIMESTAMP_OUT_OF_RANGE)
        return parsed


def json_clean(value: Any, depth: int = 0) -> None:
    """Refuse what JSON columns cannot store (NUL characters) or what is absurdly nested."""
    if depth > MAX_JSON_DEPTH:
        raise serializers.ValidationError(TOO_DEEP)
    if isinstance(value, str):
        if not text_is_storable(value):
            raise serializers.ValidationError(NUL_IN_JSON)
    elif isinstance(value, dict):
        for key, item in value.items():
            json_clean(key, depth + 1)
            json_clean(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            json_clean(item, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise serializers.ValidationError("Numbers must be finite.")


class JSONObjectField(serializers.JSONField):
    """A free-form JSON object (``attributes``)."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError(NOT_AN_OBJECT)
        json_clean(data)
        size = len(json.dumps(data, ensure_ascii=False).encode())
        limit = settings.API_MAX_ATTRIBUTES_BYTES
        if size > limit:
            raise serializers.ValidationError(ATTRIBUTES_TOO_LARGE.format(size=size, limit=limit))
        return data


def _text(
    event: dict, name: str, errors: dict, index: int, *, required: bool = True, max_length: int = MAX_KEY_LENGTH
) -> str | None:
    value = event.get(name)
    if value is None:
        if required:
            errors[f"events[{index}].{name}"] = ["This field is required."]
        return None
    if not isinstance(value, str) or not value or len(value) > max_length:
        errors[f"events[{index}].{name}"] = [f"Expected a non-empty string of at most {max_length} characters."]
        return None
    if not text_is_storable(value):
        errors[f"events[{index}].{name}"] = [NUL_IN_JSON]
        return None
    return value


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        return None
    if not timestamp_in_range(parsed):
        return None
    return parsed


def events_validate(events: Any, *, now: datetime) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Validate raw event dicts; returns (clean events, errors). ``occurred_at`` defaults to ``now``."""
    if not isinstance(events, list):
        return [], {"events": ["Expected a list of events."]}
    clean: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for index, event in enumerate(events):
        if len(errors) >= 100:
            break  # enough to fix the client; do not build a megabyte of errors
        if not isinstance(event, dict):
            errors[f"events[{index}]"] = [NOT_AN_OBJECT]
            continue
        before = len(errors)
        event_id = _text(event, "event_id", errors, index)
        customer = _text(event, "customer", errors, index)
        item = _text(event, "item", errors, index)
        for name, key in (("customer", customer), ("item", item)):
            if key is not None and not key_is_safe(key):
                errors[f"events[{index}].{name}"] = [UNSAFE_KEY_MESSAGE]
        kind = event.get("kind")
        if not isinstance(kind, str) or kind not in KINDS:
            errors[f"events[{index}].kind"] = [f"Expected one of {sorted(KINDS)}."]
        source = event.get("source")
        if source is not None and (not isinstance(source, str) or source not in SOURCES):
            errors[f"events[{index}].source"] = [f"Expected one of {sorted(SOURCES)}."]
        occurred_at = event.get("occurred_at")
        if occurred_at is None:
            occurred_at = now
        else:
            occurred_at = _timestamp(occurred_at)
            if occurred_at is None:
                errors[f"events[{index}].occurred_at"] = [f"Expected an ISO 8601 date-time. {TIMESTAMP_OUT_OF_RANGE}"]
        value = event.get("value")
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            or abs(value) > 1e15
        ):
            errors[f"events[{index}].value"] = ["Expected a finite number or null."]
        order_id = _order_id(event, errors, index)
        quantity = event.get("quantity", 1)
        if quantity is None:
            quantity = 1
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            errors[f"events[{index}].quantity"] = [f"Expected an integer from 1 to {MAX_QUANTITY}."]
        if len(errors) == before:
            clean.append({
                "event_id": event_id, "customer": customer, "item": item, "kind": kind,
                "occurred_at": occurred_at, "value": None if value is None else float(value),
                "quantity": quantity, "source": source, "order_id": order_id,
            })
    return clean, errors


def _order_id(event: dict, errors: dict, index: int) -> str:
    """Optional; null or "" mean "not part of a known order" (stored as "")."""
    if event.get("order_id") in (None, ""):
        return ""
    value = _text(event, "order_id", errors, index, max_length=MAX_ORDER_ID_LENGTH)
    if value is not None and any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        errors[f"events[{index}].order_id"] = [ORDER_ID_CONTROL]
        return ""
    return value or ""

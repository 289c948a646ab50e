"""The API's JSON parser: hostile bodies become a 400 in the API's error shape, never a 500.

``json`` recurses once per nesting level, so ``[`` x 100,000 raises ``RecursionError`` inside the
parser; DRF only turns ``ValueError`` into a 400. ``SafeJSONParser`` catches both and then refuses
documents nested deeper than ``API_MAX_JSON_DEPTH`` (checked without recursion), so nothing deeper
ever reaches a serializer, a JSON column or a template.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

TOO_DEEP = "JSON parse error: nested more than {limit} levels."
RECURSION = "JSON parse error: nested too deeply to parse."
DEFAULT_MAX_DEPTH = 32


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """True when ``value`` has containers nested more than ``limit`` levels (iterative, no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(RECURSION) from exc
        limit = getattr(settings, "API_MAX_JSON_DEPTH", DEFAULT_MAX_DEPTH)
        if isinstance(data, dict | list) and json_depth_exceeds(data, limit):
            raise ParseError(TOO_DEEP.format(limit=limit))
        return data

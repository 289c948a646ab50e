"""Schemathesis hooks for bench/drill_fuzz.py (loaded through ``SCHEMATHESIS_HOOKS=fuzz_hooks``).

``api_error_shape`` is a custom check: every 4xx must carry the API's one error body
(``{"error": str, "detail": str, "fields": {...}}``, plus ``retry_after`` on a 429; see
crm/api/exceptions.py). Each response it sees is appended to ``$DRILL_FUZZ_LOG`` (JSON lines) so the
drill can count them; bodies are kept only for the responses that break the rules.
"""
from __future__ import annotations

import json
import os
import threading

import schemathesis

_LOCK = threading.Lock()
SHAPE_KEYS = {"error", "detail", "fields"}


def error_shape_problem(status: int, body: bytes | str | None) -> str:
    """Why a 4xx body is not the API's error shape ('' when it is)."""
    try:
        data = json.loads(body or b"")
    except ValueError:
        return "not JSON"
    if not isinstance(data, dict):
        return "not a JSON object"
    extra = set(data) - SHAPE_KEYS - ({"retry_after"} if status == 429 else set())
    if not set(data) >= SHAPE_KEYS or extra:
        return f"keys {sorted(data)}"
    if not isinstance(data["error"], str) or not isinstance(data["detail"], str):
        return "error/detail not strings"
    if not isinstance(data["fields"], dict):
        return "fields not an object"
    return ""


def _record(entry: dict) -> None:
    path = os.environ.get("DRILL_FUZZ_LOG")
    if not path:
        return
    with _LOCK, open(path, "a") as out:
        out.write(json.dumps(entry) + "\n")


@schemathesis.check
def api_error_shape(ctx, response, case):
    """Every 4xx carries the API's error shape; 5xx are recorded here and failed by not_a_server_error."""
    status = response.status_code
    operation = f"{case.operation.method.upper()} {case.operation.path}"
    entry = {"op": operation, "status": status}
    problem = error_shape_problem(status, response.content) if 400 <= status < 500 else ""
    if problem or status >= 500:
        entry["problem"] = problem
        entry["body"] = (response.content or b"")[:400].decode(errors="replace")
        entry["request"] = {"path": getattr(response.request, "url", ""), "method": case.method}
    _record(entry)
    if problem:
        raise AssertionError(f"{status} body is not the API error shape: {problem}")

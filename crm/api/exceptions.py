"""One error shape for every 4xx of the API: ``{"error": code, "detail": message, "fields": {...}}``.

``api_exception_handler`` is the DRF ``EXCEPTION_HANDLER``; ``error_response`` builds the same body
for the middleware (404 of unknown URLs, 413) outside DRF. ``fields`` maps input field names (or
``"items[3].sku"``-like paths flattened by DRF's nesting) to lists of messages; it is ``{}`` when the
error is not about a field.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

INVALID_INPUT = "Invalid input."
BODY_TOO_LARGE = "The request body is larger than {limit} bytes."


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def error_body(code: str, detail: str, fields: dict | None = None) -> dict[str, Any]:
    return {"error": code, "detail": detail, "fields": fields or {}}


def error_response(status_code: int, code: str, detail: str, fields: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, detail, fields), status=status_code)


def _first_message(detail: Any) -> str:
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else INVALID_INPUT
    if isinstance(detail, dict):
        return _first_message(next(iter(detail.values()))) if detail else INVALID_INPUT
    return str(detail)


def _code_of(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    return getattr(exc, "default_code", "error")


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(str(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let it be a 500 with a traceback in the logs
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            fields = {k: v for k, v in detail.items() if k != "non_field_errors"}
            message = _first_message(detail["non_field_errors"]) if "non_field_errors" in detail else INVALID_INPUT
        else:
            fields, message = {}, _first_message(detail)
        response.data = error_body("invalid", message, fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        response.data = error_body(_code_of(exc), _first_message(detail))
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            response.data["retry_after"] = int(exc.wait)
    return response

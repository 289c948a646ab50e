"""Guards for ``/api/`` paths that run before DRF sees the request.

* Bodies whose ``Content-Length`` exceeds ``settings.API_MAX_BODY_BYTES`` get a 413 in the API's
  error shape without being read.
* Django's own HTML 404 (a URL no pattern matches) becomes the API's JSON 404.
"""
from __future__ import annotations

from django.conf import settings

from .exceptions import BODY_TOO_LARGE, error_response

API_PREFIX = "/api/"
NOT_FOUND = "No such endpoint: {path}"


class ApiGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        limit = settings.API_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "invalid_content_length", "Content-Length must be an integer.")
        if length > limit:
            return error_response(413, "payload_too_large", BODY_TOO_LARGE.format(limit=limit))
        response = self.get_response(request)
        if response.status_code == 404 and "json" not in response.get("Content-Type", ""):
            return error_response(404, "not_found", NOT_FOUND.format(path=request.path))
        return response

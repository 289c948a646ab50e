"""Guards for ``/api/`` paths that run before DRF sees the request.

* Bodies whose ``Content-Length`` exceeds ``settings.API_MAX_BODY_BYTES`` get a 413 in the API's
  error shape without being read.
* A client IP whose requests failed authentication (missing, malformed, unknown or revoked key:
  a 401) more than ``API_AUTH_FAILURE_LIMIT`` times in ``API_AUTH_FAILURE_WINDOW`` seconds gets a
  429 before any key is looked up, until the window ends. Counted in the default cache (use a
  shared one, ``CACHE_URL=redis://...``, when several processes serve the API).
* Django's own HTML 404 (a URL no pattern matches) becomes the API's JSON 404.
* An unhandled exception in an API view becomes a JSON 500 in the same shape, even with DEBUG on
  (the traceback goes to the log, never to the client).
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache

from .exceptions import BODY_TOO_LARGE, error_response

logger = logging.getLogger("crm.api")

API_PREFIX = "/api/"
NOT_FOUND = "No such endpoint: {path}"
SERVER_ERROR = "Internal server error; it has been logged."
AUTH_LOCKED = "Too many requests with a missing or invalid API key from this address; retry in {seconds} s."
AUTH_FAILURE_KEY = "api-auth-failures:{ip}"


def client_ip(request) -> str:
    """The peer address. Behind a reverse proxy, have it set REMOTE_ADDR (e.g. gunicorn --forwarded-allow-ips)."""
    return request.META.get("REMOTE_ADDR") or "unknown"


def auth_failures(ip: str) -> int:
    return int(cache.get(AUTH_FAILURE_KEY.format(ip=ip)) or 0)


def auth_failure_record(ip: str) -> None:
    key = AUTH_FAILURE_KEY.format(ip=ip)
    window = settings.API_AUTH_FAILURE_WINDOW
    if cache.add(key, 1, timeout=window):  # first failure opens the window
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)


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
        ip = client_ip(request)
        if auth_failures(ip) >= settings.API_AUTH_FAILURE_LIMIT:
            window = settings.API_AUTH_FAILURE_WINDOW
            response = error_response(429, "throttled", AUTH_LOCKED.format(seconds=window))
            response["Retry-After"] = str(window)
            return response
        response = self.get_response(request)
        if response.status_code == 401:
            auth_failure_record(ip)
        if response.status_code == 404 and "json" not in response.get("Content-Type", ""):
            return error_response(404, "not_found", NOT_FOUND.format(path=request.path))
        return response

    def process_exception(self, request, exception):
        if not request.path.startswith(API_PREFIX):
            return None
        logger.error("Unhandled error in %s %s", request.method, request.path, exc_info=exception)
        return error_response(500, "server_error", SERVER_ERROR)

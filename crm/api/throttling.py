"""Per-key rate limits. Rates come from ``settings.API_THROTTLE_RATES`` (read on every request).

A view picks a bucket with ``throttle_scope = "bulk"`` (default ``"api"``); requests are counted
per API key id (or per staff user id for a session).
"""
from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from crm.models import ApiKey

DEFAULT_SCOPE = "api"


class ApiKeyRateThrottle(SimpleRateThrottle):
    cache_format = "throttle_%(scope)s_%(ident)s"

    def __init__(self):  # the rate depends on the view, so it is parsed in allow_request
        pass

    def get_rate(self) -> str | None:
        return getattr(settings, "API_THROTTLE_RATES", {}).get(self.scope)

    def allow_request(self, request, view) -> bool:
        self.scope = getattr(view, "throttle_scope", None) or DEFAULT_SCOPE
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str | None:
        if isinstance(request.auth, ApiKey):
            ident = f"key{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user{request.user.pk}"
        else:
            ident = f"ip{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

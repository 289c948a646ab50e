"""``Authorization: Bearer <key>`` authentication against ``crm.ApiKey`` (only the SHA-256 is stored).

It is the first default authentication class (``crm/settings.py`` ``REST_FRAMEWORK``), followed by
``SessionAuthentication`` for staff users of the admin. On success ``request.user`` is an
``ApiKeyUser`` (authenticated, not staff) and ``request.auth`` is the ``ApiKey`` row::

    from crm.api.authentication import ApiKeyAuthentication
    from crm.api.permissions import HasScope

    class CampaignListApi(APIView):
        authentication_classes = [ApiKeyAuthentication, SessionAuthentication]  # the defaults anyway
        permission_classes = [HasScope]                                         # the default anyway

        def get(self, request):
            key = request.auth        # crm.models.ApiKey, or None for a staff session
            ...

A missing header lets the next class try (so a staff session still works); a malformed, unknown
or revoked key is a 401.
"""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from crm.models import ApiKey

KEYWORD = "Bearer"
INVALID_HEADER = "Invalid Authorization header: send 'Bearer <key>'."
INVALID_KEY = "Invalid or revoked API key."
# last_used_at is written at most this often per key, so reads do not turn into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_hash(raw_key: str) -> str:
    return ApiKey.hash_raw_key(raw_key)


class ApiKeyUser:
    """The principal behind an API key: authenticated, never staff, never a superuser."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.username = f"api-key:{api_key.prefix}"

    def __str__(self) -> str:
        return self.username

    def has_perm(self, perm, obj=None) -> bool:
        return False


class ApiKeyAuthentication(BaseAuthentication):
    keyword = KEYWORD

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(INVALID_HEADER)
        try:
            raw_key = header[1].decode("ascii")
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed(INVALID_HEADER) from exc
        return self.authenticate_credentials(raw_key)

    def authenticate_credentials(self, raw_key: str):
        api_key = ApiKey.objects.filter(hashed_key=api_key_hash(raw_key), is_active=True).first()
        if api_key is None:
            raise exceptions.AuthenticationFailed(INVALID_KEY)
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now
        return ApiKeyUser(api_key), api_key

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the Bearer key in the OpenAPI schema (Swagger UI's "Authorize" button)."""

    target_class = "crm.api.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API key: Authorization: Bearer <key>."}

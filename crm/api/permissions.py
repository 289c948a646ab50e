"""Scope checks for API keys; staff sessions may do everything.

``HasScope`` is the default permission class. The scope a request needs:

* ``view.required_scopes[method]`` if the view defines that dict (e.g. ``{"POST": "admin"}``),
* else ``view.required_scope`` if set (e.g. ``"admin"`` for model operations),
* else ``read`` for GET/HEAD/OPTIONS and ``write`` for every other method.

``admin`` implies ``read`` and ``write``. Usage::

    from crm.api.permissions import HasScope, required_scope_for

    class ModelVersionActivateApi(APIView):
        permission_classes = [HasScope]   # already the default
        required_scope = "admin"
"""
from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from crm.models import ApiKey

Scope = ApiKey.Scope
MISSING_SCOPE = "This API key lacks the '{scope}' scope."
STAFF_ONLY = "Only staff users may use the API with a session; integrations use an API key."


def required_scope_for(request, view) -> str:
    per_method = getattr(view, "required_scopes", None) or {}
    if request.method in per_method:
        return per_method[request.method]
    explicit = getattr(view, "required_scope", None)
    if explicit:
        return explicit
    return Scope.READ if request.method in SAFE_METHODS else Scope.WRITE


class HasScope(BasePermission):
    """An API key with the scope the request needs, or a logged-in staff user."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False  # DRF answers 401 (with WWW-Authenticate) or 403
        if isinstance(request.auth, ApiKey):
            scope = required_scope_for(request, view)
            if not request.auth.has_scope(scope):
                self.message = MISSING_SCOPE.format(scope=scope)
                return False
            return True
        if user.is_staff and user.is_active:
            return True
        self.message = STAFF_ONLY
        return False


class IsStaffOrApiKey(BasePermission):
    """Any API key (whatever its scopes) or a staff session: used for the schema and docs pages."""

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)

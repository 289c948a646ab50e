"""HTTP API plumbing shared by every app's ``apis.py``: API-key auth, scopes, throttling, errors.

A view in any app gets all of it from the ``REST_FRAMEWORK`` defaults; it only says which scope a
method needs when the default (GET/HEAD/OPTIONS -> ``read``, anything else -> ``write``) is wrong::

    from rest_framework.views import APIView
    from crm.api.permissions import HasScope

    class CampaignScheduleApi(APIView):
        required_scope = "admin"          # every method; or required_scopes = {"POST": "admin"}
        throttle_scope = "api"            # "api" (default) or "bulk"
"""

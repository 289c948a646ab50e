"""``POST /api/v1/recommendations/session``: real-time recommendations from a visitor's recent items.

Needs the ``read`` scope (it changes nothing, even though it is a POST: the item list can be long).
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from .apis import MAX_LIMIT, RecommendedItemSerializer
from .session import ModelUnavailable, session_recommendations

MAX_SESSION_ITEMS = 200


class ModelUnavailableError(exceptions.APIException):
    status_code = 503
    default_code = "model_unavailable"


class SessionRecommendationsApi(GenericAPIView):
    """Top-k items for a visitor (anonymous or logged in) from the items they looked at, oldest first,
    computed now by the active model; items they already have are never returned."""

    required_scope = "read"
    pagination_class = None

    @extend_schema_serializer(component_name="SessionRecommendationsInput")
    class InputSerializer(serializers.Serializer):
        items = serializers.ListField(
            child=serializers.CharField(max_length=191), allow_empty=True, max_length=MAX_SESSION_ITEMS,
            help_text="SKUs of the visitor's recent items, oldest first (at most 200).",
        )
        k = serializers.IntegerField(required=False, default=10, min_value=1, max_value=MAX_LIMIT)
        category = serializers.CharField(required=False, max_length=200, allow_blank=False)
        in_stock = serializers.BooleanField(required=False, default=True,
                                            help_text="Only active, in-stock items (default true).")
        explain = serializers.BooleanField(required=False, default=False)

    @extend_schema_serializer(component_name="SessionRecommendationsOutput")
    class OutputSerializer(serializers.Serializer):
        model_version = serializers.IntegerField(allow_null=True)
        ignored = serializers.ListField(child=serializers.CharField(),
                                        help_text="SKUs the active model does not know (ignored).")
        results = RecommendedItemSerializer(many=True)

    @extend_schema(operation_id="recommendations_session", request=InputSerializer, responses=OutputSerializer)
    def post(self, request):
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            result = session_recommendations(skus=data["items"], k=data["k"], category=data.get("category"),
                                             in_stock=data["in_stock"])
        except ModelUnavailable as exc:
            raise ModelUnavailableError(str(exc)) from exc
        body = {"model_version": result.model_version, "ignored": result.ignored, "results": result.results}
        return Response(self.OutputSerializer(body, context={"explain": data["explain"]}).data)

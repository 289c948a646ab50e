"""REST API of the recommendations app (``/api/v1/``): what to show, and model operations.

* ``GET customers/{external_id}/recommendations`` and ``GET items/{sku}/similar`` need ``read``.
* Model versions and training runs are model operations: every method needs ``admin``.

``?list=discover`` (default: products the customer has not bought) or ``?list=buy_again``
(products they bought before, ranked by when they will need them again) picks the stored list.
Every result carries ``rank``, ``probability`` (calibrated, null for cold start) and ``reason``
(human-readable, e.g. "similar to Trail shoes", "you buy this about every 3 weeks");
``?explain=true`` adds the raw ``score`` and the ``source`` of each result (``model``,
``cold_start``, ``history`` or ``similar``).
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from crm.api.exceptions import error_body
from crm.api.lookups import found_or_404
from crm.api.pagination import ApiCursorPagination
from crm.apis import CUSTOMER_NOT_FOUND, item_or_404

from .models import ModelVersion, Recommendation, TrainingRun
from .selectors import (
    LIST_DISCOVER,
    ItemFilters,
    customer_with_active_version,
    recommendation_list_for_customer,
    similar_items,
)
from .services import training
from .services.list_cache import customer_list_cached
from .services.registry import ActivationError, model_version_activate

MODEL_VERSION_NOT_FOUND = "No model version with id {key}."
TRAINING_RUN_NOT_FOUND = "No training run with id {key}."
PRICE_RANGE = "min_price must not exceed max_price."
UNKNOWN_LIST = 'Expected "discover" or "buy_again", got "{input}".'
MAX_LIMIT = 100


class RecommendedItemSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    sku = serializers.CharField(source="item.sku")
    title = serializers.CharField(source="item.title")
    category = serializers.CharField(source="item.category")
    price = serializers.DecimalField(source="item.price", max_digits=12, decimal_places=2, allow_null=True)
    currency = serializers.CharField(source="item.currency")
    url = serializers.CharField(source="item.url")
    image_url = serializers.CharField(source="item.image_url")
    probability = serializers.FloatField(allow_null=True)
    reason = serializers.CharField()
    score = serializers.FloatField(required=False, help_text="Only with explain=true.")
    source = serializers.CharField(required=False, help_text="Only with explain=true.")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self.context.get("explain"):
            data.pop("score", None)
            data.pop("source", None)
        return data


class CustomerRecommendationsApi(GenericAPIView):
    """The customer's recommendations now, from one of two lists: ``discover`` (the active model's
    list re-ranked by business rules: active, in-stock, not rejected, not already bought; topped up
    by cold start) or ``buy_again`` (what they bought before, when they will need it again)."""

    pagination_class = None

    @extend_schema_serializer(component_name="CustomerRecommendationsFilter")
    class FilterSerializer(serializers.Serializer):
        limit = serializers.IntegerField(required=False, default=10, min_value=1, max_value=MAX_LIMIT)
        category = serializers.CharField(required=False, max_length=200)
        min_price = serializers.DecimalField(required=False, max_digits=12, decimal_places=2, min_value=0)
        max_price = serializers.DecimalField(required=False, max_digits=12, decimal_places=2, min_value=0)
        explain = serializers.BooleanField(required=False, default=False)
        list = serializers.ChoiceField(
            choices=Recommendation.List.values, required=False, default=LIST_DISCOVER,
            error_messages={"invalid_choice": UNKNOWN_LIST},
            help_text="Which list: discover (default; products not bought yet) or buy_again "
            "(products bought before, by when they are due again).",
        )

        def validate(self, attrs):
            low, high = attrs.get("min_price"), attrs.get("max_price")
            if low is not None and high is not None and low > high:
                raise serializers.ValidationError({"min_price": [PRICE_RANGE]})
            return attrs

    @extend_schema_serializer(component_name="CustomerRecommendationsOutput")
    class OutputSerializer(serializers.Serializer):
        customer = serializers.CharField()
        model_version = serializers.IntegerField(allow_null=True)
        list = serializers.ChoiceField(choices=Recommendation.List.values)
        results = RecommendedItemSerializer(many=True)

    @extend_schema(operation_id="customers_recommendations", parameters=[FilterSerializer],
                   responses=OutputSerializer)
    def get(self, request, external_id: str):
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data
        customer, version_id = customer_with_active_version(external_id=external_id)
        customer = found_or_404(customer, CUSTOMER_NOT_FOUND.format(key=external_id))

        def build() -> dict:
            results = recommendation_list_for_customer(
                customer=customer,
                limit=query["limit"],
                filters=ItemFilters(
                    category=query.get("category"), min_price=query.get("min_price"), max_price=query.get("max_price")
                ),
                list_name=query["list"],
                model_version_id=version_id,
            )
            body = {"customer": customer.external_id, "model_version": version_id, "list": query["list"],
                    "results": results}
            return self.OutputSerializer(body, context={"explain": query["explain"]}).data

        return Response(customer_list_cached(model_version_id=version_id, customer_id=customer.pk,
                                             query=dict(query), build=build))


class ItemSimilarApi(GenericAPIView):
    """Items like this one (text similarity blended with "bought together")."""

    pagination_class = None

    @extend_schema_serializer(component_name="ItemSimilarFilter")
    class FilterSerializer(serializers.Serializer):
        limit = serializers.IntegerField(required=False, default=10, min_value=1, max_value=MAX_LIMIT)
        explain = serializers.BooleanField(required=False, default=False)

    @extend_schema_serializer(component_name="ItemSimilarOutput")
    class OutputSerializer(serializers.Serializer):
        item = serializers.CharField()
        results = RecommendedItemSerializer(many=True)

    @extend_schema(operation_id="items_similar", parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request, sku: str):
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        item = item_or_404(sku)
        results = similar_items(item=item, limit=params.validated_data["limit"])
        body = {"item": item.sku, "results": results}
        return Response(self.OutputSerializer(body, context={"explain": params.validated_data["explain"]}).data)


# --- model operations (scope: admin) ------------------------------------------------------------

class ModelVersionOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = ["id", "algorithm", "status", "is_active", "activated_at", "previous", "metrics", "params",
                  "data_stats", "device", "timings", "notes", "created_at"]


def model_version_get(pk: int) -> ModelVersion:
    return found_or_404(ModelVersion.objects.filter(pk=pk).first(), MODEL_VERSION_NOT_FOUND.format(key=pk))


class ModelVersionListApi(GenericAPIView):
    """Model versions with their offline metrics, newest first."""

    required_scope = "admin"
    queryset = ModelVersion.objects.all()
    pagination_class = ApiCursorPagination
    filter_backends = []

    @extend_schema(operation_id="model_versions_list", responses=ModelVersionOutputSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ModelVersionOutputSerializer(page, many=True).data)


class ModelVersionDetailApi(GenericAPIView):
    required_scope = "admin"

    @extend_schema(operation_id="model_versions_retrieve", responses=ModelVersionOutputSerializer)
    def get(self, request, pk: int):
        return Response(ModelVersionOutputSerializer(model_version_get(pk)).data)


class ModelVersionActivateApi(GenericAPIView):
    """Make a scored version the serving one (atomically); 409 when it cannot serve."""

    required_scope = "admin"

    @extend_schema(operation_id="model_versions_activate", request=None,
                   responses={200: ModelVersionOutputSerializer})
    def post(self, request, pk: int):
        version = model_version_get(pk)
        try:
            version = model_version_activate(version=version)
        except ActivationError as exc:
            return Response(error_body("activation_failed", str(exc)), status=status.HTTP_409_CONFLICT)
        return Response(ModelVersionOutputSerializer(version).data)


class TrainingRunOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = ["id", "task_id", "algorithm", "params", "force_activate", "status", "stage", "progress", "error",
                  "model_version", "promoted", "created_at", "started_at", "finished_at"]


class TrainingRunDetailOutputSerializer(TrainingRunOutputSerializer):
    class Meta(TrainingRunOutputSerializer.Meta):
        fields = [*TrainingRunOutputSerializer.Meta.fields, "log"]


class TrainingRunListStartApi(GenericAPIView):
    """GET lists training runs; POST queues one (202 with the run id and the Celery task id).

    Without a broker the run trains in a background thread of the web process after the response
    (``training_run_enqueue(background=True)``); follow it at ``url``.
    """

    required_scope = "admin"
    queryset = TrainingRun.objects.all()
    pagination_class = ApiCursorPagination
    filter_backends = []

    @extend_schema_serializer(component_name="TrainingRunStartInput")
    class InputSerializer(serializers.Serializer):
        algorithm = serializers.CharField(required=False, default="auto", max_length=50,
                                          help_text="auto, popularity, ease, sequential, ...")
        activate = serializers.BooleanField(required=False, default=False,
                                            help_text="Serve the new version even if it does not beat the active one.")
        params = serializers.DictField(required=False, default=dict, help_text="Hyper-parameter overrides.")

        def validate_algorithm(self, value: str) -> str:
            choices = training.algorithm_choices()
            if value not in choices:
                raise serializers.ValidationError(f"Unknown algorithm '{value}'; choose from {', '.join(choices)}.")
            return value

        def validate_params(self, value: dict) -> dict:
            from crm.api.validation import json_clean

            json_clean(value)
            return value

    @extend_schema(operation_id="training_runs_list", responses=TrainingRunOutputSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TrainingRunOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="training_runs_create", request=InputSerializer,
        responses={202: inline_serializer("TrainingRunStarted", {
            "id": serializers.IntegerField(), "task_id": serializers.CharField(),
            "status": serializers.CharField(), "url": serializers.CharField(),
        })},
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            run = training.training_run_enqueue(**serializer.validated_data, background=True)
        except ValueError as exc:
            raise exceptions.ValidationError({"algorithm": [str(exc)]}) from exc
        body = {"id": run.id, "task_id": run.task_id, "status": run.status,
                "url": request.build_absolute_uri(f"/api/v1/training-runs/{run.id}")}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class TrainingRunDetailApi(GenericAPIView):
    required_scope = "admin"

    @extend_schema(operation_id="training_runs_retrieve", responses=TrainingRunDetailOutputSerializer)
    def get(self, request, pk: int):
        run = found_or_404(TrainingRun.objects.filter(pk=pk).first(), TRAINING_RUN_NOT_FOUND.format(key=pk))
        return Response(TrainingRunDetailOutputSerializer(run).data)

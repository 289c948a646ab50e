"""Deliverability endpoints: ``/api/v1/webhooks`` (outbound webhook subscriptions and their
delivery log, scope ``admin``; the secret is write-only, only its last four characters are shown)
and ``/api/v1/campaigns/<id>/schedule-local`` (send at a local time in each recipient's zone).
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from crm.api.lookups import found_or_404

from .models import Campaign, WebhookDelivery, WebhookSubscription
from .services.build import CampaignStateError
from .services.local_time import campaign_plan_local_send
from .services.webhooks_out import (
    EVENT_TYPES,
    webhook_event_types_validate,
    webhook_subscription_create,
    webhook_url_validate,
)


class SubscriptionFields(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    url = serializers.CharField(max_length=1000, help_text="http:// or https:// only.")
    secret = serializers.CharField(min_length=16, max_length=200, write_only=True)
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES), allow_empty=False)
    active = serializers.BooleanField(required=False, default=True)

    def validate_url(self, value: str) -> str:
        try:
            return webhook_url_validate(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class SubscriptionOutputSerializer(serializers.ModelSerializer):
    secret_hint = serializers.SerializerMethodField()

    class Meta:
        model = WebhookSubscription
        fields = ["id", "name", "url", "event_types", "active", "secret_hint", "created_at"]

    def get_secret_hint(self, obj: WebhookSubscription) -> str:
        return f"...{obj.secret[-4:]}"


class DeliveryOutputSerializer(serializers.ModelSerializer):
    log = serializers.SerializerMethodField()

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_id", "event_type", "status", "attempts", "last_status_code", "last_error",
                  "next_attempt_at", "delivered_at", "created_at", "payload", "log"]

    def get_log(self, obj: WebhookDelivery) -> list[dict]:
        return [{"attempted_at": a.attempted_at, "status_code": a.status_code, "error": a.error,
                 "duration_ms": a.duration_ms} for a in obj.log.all()]


class WebhookListCreateApi(GenericAPIView):
    """GET lists subscriptions; POST creates one."""

    required_scope = "admin"
    queryset = WebhookSubscription.objects.all()

    @extend_schema(operation_id="webhooks_list", responses=SubscriptionOutputSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SubscriptionOutputSerializer(page, many=True).data)

    @extend_schema(operation_id="webhooks_create", request=SubscriptionFields,
                   responses={201: SubscriptionOutputSerializer})
    def post(self, request):
        serializer = SubscriptionFields(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            subscription = webhook_subscription_create(**serializer.validated_data)
        except ValueError as exc:
            raise exceptions.ValidationError(str(exc)) from exc
        return Response(SubscriptionOutputSerializer(subscription).data, status=status.HTTP_201_CREATED)


class WebhookDetailApi(GenericAPIView):
    """GET one subscription, PATCH it (name, url, secret, event_types, active), DELETE it."""

    required_scope = "admin"

    @extend_schema(operation_id="webhooks_retrieve", responses=SubscriptionOutputSerializer)
    def get(self, request, pk: int):
        subscription = found_or_404(WebhookSubscription.objects.filter(pk=pk).first())
        return Response(SubscriptionOutputSerializer(subscription).data)

    @extend_schema(operation_id="webhooks_update", request=SubscriptionFields, responses=SubscriptionOutputSerializer)
    def patch(self, request, pk: int):
        subscription = found_or_404(WebhookSubscription.objects.filter(pk=pk).first())
        serializer = SubscriptionFields(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "event_types" in data:
            data["event_types"] = webhook_event_types_validate(data["event_types"])
        for field, value in data.items():
            setattr(subscription, field, value)
        subscription.save()
        return Response(SubscriptionOutputSerializer(subscription).data)

    @extend_schema(operation_id="webhooks_delete", responses={204: None})
    def delete(self, request, pk: int):
        found_or_404(WebhookSubscription.objects.filter(pk=pk).first()).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListApi(GenericAPIView):
    """GET the delivery log of one subscription (newest first), with each attempt's response code."""

    required_scope = "admin"

    queryset = WebhookDelivery.objects.none()  # for the schema; get_queryset filters by subscription

    def get_queryset(self):
        return WebhookDelivery.objects.filter(subscription_id=self.kwargs["pk"]).prefetch_related("log")

    @extend_schema(operation_id="webhooks_deliveries", responses=DeliveryOutputSerializer(many=True))
    def get(self, request, pk: int):
        found_or_404(WebhookSubscription.objects.filter(pk=pk).first())
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(DeliveryOutputSerializer(page, many=True).data)


class LocalScheduleFields(serializers.Serializer):
    day = serializers.DateField(help_text="The calendar day, in each recipient's own time zone.")
    local_time = serializers.RegexField(r"^([01]\d|2[0-3]):[0-5]\d$", help_text="HH:MM, e.g. 09:00.")


class CampaignScheduleLocalApi(GenericAPIView):
    """POST plans waves: ``local_time`` on ``day`` in each recipient's time zone, out of quiet hours."""

    @extend_schema(operation_id="campaigns_schedule_local", request=LocalScheduleFields, responses={200: dict})
    def post(self, request, pk: int):
        campaign = found_or_404(Campaign.objects.filter(pk=pk).first())
        serializer = LocalScheduleFields(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            waves = campaign_plan_local_send(campaign=campaign, day=data["day"], at=data["local_time"])
        except CampaignStateError as exc:
            from .apis import Conflict

            raise Conflict(str(exc)) from exc
        except ValueError as exc:
            raise exceptions.ValidationError(str(exc)) from exc
        return Response({"campaign_id": campaign.pk, "waves": [
            {"send_at": w.send_at, "time_zones": w.time_zones, "customers": w.customers} for w in waves
        ]})

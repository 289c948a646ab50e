"""``/api/v1/campaigns`` endpoints: CRUD, build, send, schedule, cancel, results, recipients, offers.

Authentication, scopes (read for GET, write otherwise), throttling and the error shape are the
project's DRF defaults (``crm.api``). Each API validates, calls one service or selector, returns.
"""
from __future__ import annotations

import csv
import io
from dataclasses import asdict

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from crm.api.lookups import found_or_404
from crm.csv_safety import csv_dict, csv_row
from crm.models import Segment

from .models import MAX_CAP_COUNT, MAX_DAYS, Campaign, Recipient
from .selectors import campaign_offers, recipient_list
from .services.build import CampaignStateError, campaign_build
from .services.campaign import campaign_create, campaign_delete, campaign_update
from .services.offers import OFFER_FIELDS
from .services.results import campaign_results
from .services.schedule import campaign_cancel, campaign_schedule
from .services.send import campaign_send
from .templating import (
    MAX_TEMPLATE_BYTES,
    validate_html_template,
    validate_subject_template,
    validate_text_template,
)


def _campaign_or_404(pk: int) -> Campaign:
    return found_or_404(Campaign.objects.filter(pk=pk).first())


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."
    default_code = "conflict"


def _call(service, **kwargs):
    """Map service errors to API errors: wrong state -> 409, bad values -> 400."""
    try:
        return service(**kwargs)
    except CampaignStateError as exc:
        raise Conflict(str(exc)) from exc
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(exc.message_dict if hasattr(exc, "message_dict") else exc.messages) from exc
    except ValueError as exc:
        raise exceptions.ValidationError(str(exc)) from exc


class CampaignFields(serializers.Serializer):  # bounds: campaigns.models.MAX_DAYS / MAX_CAP_COUNT
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    audience = serializers.PrimaryKeyRelatedField(queryset=Segment.objects.all(), allow_null=True, required=False)
    channel = serializers.ChoiceField(choices=Campaign.Channel.choices, required=False)
    # Sandboxed Jinja2 (campaigns.templating): compiled and rendered on a sample message before saving.
    subject_template = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEMPLATE_BYTES,
                                             validators=[validate_subject_template])
    html_template = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEMPLATE_BYTES,
                                          validators=[validate_html_template])
    text_template = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEMPLATE_BYTES,
                                          validators=[validate_text_template])
    n_items = serializers.IntegerField(min_value=1, max_value=50, required=False)
    filter_category = serializers.CharField(required=False, allow_blank=True, max_length=200)
    filter_min_price = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True)
    filter_max_price = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True)
    max_per_category = serializers.IntegerField(min_value=1, max_value=50, required=False, allow_null=True)
    recommendation_list = serializers.ChoiceField(
        choices=Campaign._meta.get_field("recommendation_list").choices, required=False,
        help_text="Which list fills the item block: discover (default) or buy_again.",
    )
    holdout_share = serializers.FloatField(min_value=0, max_value=1, required=False)
    frequency_cap_count = serializers.IntegerField(min_value=0, max_value=MAX_CAP_COUNT, required=False)
    frequency_cap_days = serializers.IntegerField(min_value=1, max_value=MAX_DAYS, required=False)
    consent_required = serializers.BooleanField(
        required=False, help_text="Offer lists only: e-mail campaigns never mail a customer without opt-in."
    )


class CampaignOutputSerializer(serializers.ModelSerializer):
    crontab = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id", "name", "description", "audience", "channel", "subject_template", "html_template",
            "text_template", "n_items", "filter_category", "filter_min_price", "filter_max_price",
            "max_per_category", "recommendation_list", "holdout_share", "frequency_cap_count", "frequency_cap_days",
            "consent_required",
            "status", "send_at", "crontab", "current_run", "built_at", "sent_at", "created_at", "updated_at",
        ]

    def get_crontab(self, obj: Campaign) -> str | None:
        task = obj.periodic_task
        if task is None or task.crontab is None:
            return None
        c = task.crontab
        return f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"


class CampaignListCreateApi(GenericAPIView):
    """GET lists campaigns (newest first, cursor pages); POST creates a draft."""

    queryset = Campaign.objects.select_related("periodic_task__crontab")
    OutputSerializer = CampaignOutputSerializer

    @extend_schema(operation_id="campaigns_list", responses=CampaignOutputSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.OutputSerializer(page, many=True).data)

    @extend_schema(operation_id="campaigns_create", request=CampaignFields, responses={201: CampaignOutputSerializer})
    def post(self, request):
        serializer = CampaignFields(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = _call(campaign_create, **serializer.validated_data)
        return Response(self.OutputSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetailApi(GenericAPIView):
    """GET one campaign, PATCH its definition, DELETE it (not while building or sending)."""

    OutputSerializer = CampaignOutputSerializer

    @extend_schema(operation_id="campaigns_retrieve", responses=CampaignOutputSerializer)
    def get(self, request, pk: int):
        return Response(self.OutputSerializer(_campaign_or_404(pk)).data)

    @extend_schema(operation_id="campaigns_update", request=CampaignFields, responses=CampaignOutputSerializer)
    def patch(self, request, pk: int):
        campaign = _campaign_or_404(pk)
        serializer = CampaignFields(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        campaign = _call(campaign_update, campaign=campaign, data=serializer.validated_data)
        return Response(self.OutputSerializer(campaign).data)

    @extend_schema(operation_id="campaigns_delete", responses={204: None})
    def delete(self, request, pk: int):
        _call(campaign_delete, campaign=_campaign_or_404(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CampaignBuildApi(GenericAPIView):
    """POST builds (or rebuilds) the current run: recipients and their items. Synchronous."""

    @extend_schema(operation_id="campaigns_build", request=None, responses={200: dict})
    def post(self, request, pk: int):
        result = _call(campaign_build, campaign=_campaign_or_404(pk))
        return Response(asdict(result))


class CampaignSendApi(GenericAPIView):
    """POST enqueues the send of the current run's pending recipients (202); safe to repeat."""

    @extend_schema(operation_id="campaigns_send", request=None, responses={202: dict})
    def post(self, request, pk: int):
        report = _call(campaign_send, campaign=_campaign_or_404(pk), wait=False)
        return Response(asdict(report), status=status.HTTP_202_ACCEPTED)


class CampaignScheduleApi(GenericAPIView):
    """POST ``{"send_at": ISO time}`` (once) or ``{"crontab": "0 9 * * 1"}`` (recurring)."""

    class InputSerializer(serializers.Serializer):
        send_at = serializers.DateTimeField(required=False, allow_null=True)
        crontab = serializers.CharField(required=False, allow_blank=True, max_length=100)

    @extend_schema(operation_id="campaigns_schedule", request=InputSerializer, responses=CampaignOutputSerializer)
    def post(self, request, pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = _call(campaign_schedule, campaign=_campaign_or_404(pk),
                         send_at=serializer.validated_data.get("send_at"),
                         crontab=serializer.validated_data.get("crontab") or None)
        return Response(CampaignOutputSerializer(campaign).data)


class CampaignCancelApi(GenericAPIView):
    """POST stops a campaign in any in-flight state (also one stuck ``sending``): back to ``draft`` when
    nobody was mailed yet, else ``cancelled``. It can then be edited, deleted, or rebuilt and sent."""

    @extend_schema(operation_id="campaigns_cancel", request=None, responses=CampaignOutputSerializer)
    def post(self, request, pk: int):
        campaign = _call(campaign_cancel, campaign=_campaign_or_404(pk))
        return Response(CampaignOutputSerializer(campaign).data)


class CampaignResultsApi(GenericAPIView):
    """GET the results: counts, rates, attributed conversions, uplift vs holdout with a 95% CI."""

    @extend_schema(operation_id="campaigns_results", responses={200: dict})
    def get(self, request, pk: int):
        run = request.query_params.get("run")
        if run is not None and not run.isdigit():
            raise exceptions.ValidationError({"run": ["A run number."]})
        campaign = _campaign_or_404(pk)
        return Response(campaign_results(campaign=campaign, run=int(run) if run else None))


class RecipientOutputSerializer(serializers.ModelSerializer):
    customer_id = serializers.CharField(source="customer.external_id")

    class Meta:
        model = Recipient
        fields = [
            "id", "run", "customer_id", "email", "state", "skip_reason", "is_holdout", "items", "message_id",
            "sent_at", "failed_at", "error", "opened_at", "clicked_at", "click_flagged", "converted_at", "revenue",
        ]


class CampaignRecipientListApi(GenericAPIView):
    """GET the recipients (cursor pages); ``?state=`` and ``?run=`` filter."""

    OutputSerializer = RecipientOutputSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no campaign in the URL
            return Recipient.objects.none()
        campaign = _campaign_or_404(self.kwargs["pk"])
        run = self.request.query_params.get("run")
        state = self.request.query_params.get("state")
        if state and state not in Recipient.State.values:
            raise exceptions.ValidationError({"state": [f"One of {', '.join(Recipient.State.values)}."]})
        return recipient_list(campaign=campaign, run=int(run) if run and run.isdigit() else None, state=state)

    @extend_schema(operation_id="campaigns_recipients", responses=RecipientOutputSerializer(many=True))
    def get(self, request, pk: int):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.OutputSerializer(page, many=True).data)


class OffersCsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        out = io.StringIO()
        rows = data.get("offers") if isinstance(data, dict) and "offers" in data else None
        if rows is None:  # an error body
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["error", "detail"])
            cells = [data.get("error", ""), data.get("detail", "")] if isinstance(data, dict) else [data]
            writer.writerow(csv_row(cells))
            return out.getvalue()
        writer = csv.DictWriter(out, fieldnames=OFFER_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(csv_dict(row) for row in rows)  # no formulas: cells starting = + - @ get a '
        return out.getvalue()


class CampaignOffersApi(GenericAPIView):
    """GET the per-customer offers of the current run: JSON, or CSV with ``?format=csv``."""

    renderer_classes = [JSONRenderer, OffersCsvRenderer]

    def finalize_response(self, request, response, *args, **kwargs):
        """Errors keep the API's JSON error shape even when ``?format=csv`` asked for a CSV body."""
        if isinstance(response, Response) and response.status_code >= 400:
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(operation_id="campaigns_offers", responses={200: dict})
    def get(self, request, pk: int, format=None):
        campaign = _campaign_or_404(pk)
        return Response({"campaign_id": campaign.pk, "run": campaign.current_run,
                         "offers": campaign_offers(campaign=campaign)})

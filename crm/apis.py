"""REST API of the CRM core (``/api/v1/``): customers, items, interactions, feedback.

Thin views: validate with the nested ``InputSerializer``, call one service or selector, render with
the nested ``OutputSerializer``. Auth, scopes, throttling, pagination and the error shape come
from the ``REST_FRAMEWORK`` defaults (see ``crm.api``). ``docs/api.md`` is the guide.
"""
from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import exceptions, filters, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from . import consent, selectors, services
from .api.exceptions import error_body
from .api.lookups import found_or_404
from .api.validation import JSONObjectField, SafeKeyField, SaneDateTimeField, events_validate
from .filters import CustomerFilter, FeedbackFilter, InteractionFilter, ItemFilter
from .models import MAX_ORDER_ID_LENGTH, ConsentEvent, Customer, Feedback, Interaction, Item

CUSTOMER_NOT_FOUND = "No customer with external_id '{key}'."
ITEM_NOT_FOUND = "No item with sku '{key}'."
FEEDBACK_NOT_FOUND = "No feedback with id {key}."
ALREADY_EXISTS = "A {model} with {field} '{key}' already exists."
BATCH_TOO_LARGE = "At most {limit} {what} per request; got {count}."
BATCH_NOT_A_LIST = "Send {{\"{what}\": [...]}} with a list of {what}."
DUPLICATE_KEYS = "Each {field} may appear once per request; repeated: {keys}."
UNKNOWN_REFERENCES = "Unknown customers or items; create them first or send ?unknown=create."
NOT_INTERESTED_NEEDS_ITEM = "'not_interested' feedback must name an item."
UNKNOWN_PARAM = "Expected 'create' or 'reject'."
CONSENT_CHANGED_IN_BULK = "Consent of existing customers cannot change in a bulk upsert: {keys}. " + (
    "Use POST /api/v1/customers/{{external_id}}/consent."
)
RECIPIENT_NOT_THEIRS = "Campaign recipient {key} is not a recipient of customer '{customer}'."


def request_actor(request) -> str:
    """Who made an API request, for audit records: the key's prefix and name, or the staff user."""
    if request.auth is not None and hasattr(request.auth, "prefix"):
        return f"API key {request.auth.prefix}… ({request.auth.name})"
    return f"staff user {getattr(request.user, 'username', '?')} (API session)"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."
    default_code = "conflict"


def _batch_too_large(what: str, limit: int, count: int) -> Response:
    body = error_body("batch_too_large", BATCH_TOO_LARGE.format(limit=limit, what=what, count=count))
    return Response(body, status=status.HTTP_400_BAD_REQUEST)


def _raw_list(request, what: str, limit: int) -> list | Response:
    data = request.data
    rows = data.get(what) if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise exceptions.ValidationError({what: [BATCH_NOT_A_LIST.format(what=what)]})
    if len(rows) > limit:
        return _batch_too_large(what, limit, len(rows))
    return rows


def _bulk_rows(request, input_serializer, what: str, key: str) -> list[dict] | Response:
    """The validated rows of a bulk upsert ``{"<what>": [...]}``, each ``key`` once; or the 400 for too many."""
    rows = _raw_list(request, what, settings.API_BULK_MAX_RECORDS)
    if isinstance(rows, Response):
        return rows
    serializer = input_serializer(data={what: rows})
    serializer.is_valid(raise_exception=True)
    clean = [dict(row) for row in serializer.validated_data[what]]
    _reject_repeats(clean, key, what)
    return clean


def _reject_repeats(rows: list[dict], field: str, what: str) -> None:
    seen, repeated = set(), []
    for row in rows:
        if row[field] in seen:
            repeated.append(row[field])
        seen.add(row[field])
    if repeated:
        shown = ", ".join(sorted(set(repeated))[:20])
        raise exceptions.ValidationError({what: [DUPLICATE_KEYS.format(field=field, keys=shown)]})


class ListMixin:
    """Filtering, ordering and cursor pagination for a GenericAPIView's ``get``."""

    filter_backends = [DjangoFilterBackend, filters.OrderingFilter]
    ordering_fields = ["id", "created_at"]
    ordering = ["-id"]

    def list_response(self, output_serializer):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(output_serializer(page, many=True).data)


def list_create_schema(resource: str, input_serializer, output_serializer):
    """The OpenAPI operations of a list + create endpoint: ``<resource>_list``, ``<resource>_create``."""
    return extend_schema_view(
        get=extend_schema(operation_id=f"{resource}_list", responses=output_serializer(many=True)),
        post=extend_schema(
            operation_id=f"{resource}_create", request=input_serializer, responses={201: output_serializer}
        ),
    )


def detail_schema(resource: str, input_serializer, output_serializer):
    """The OpenAPI operations of a detail endpoint: ``<resource>_retrieve|update|partial_update|destroy``."""
    return extend_schema_view(
        get=extend_schema(operation_id=f"{resource}_retrieve", responses=output_serializer),
        put=extend_schema(operation_id=f"{resource}_update", request=input_serializer, responses=output_serializer),
        patch=extend_schema(
            operation_id=f"{resource}_partial_update", request=input_serializer, responses=output_serializer
        ),
        delete=extend_schema(operation_id=f"{resource}_destroy", responses={204: None}),
    )


class KeyedListCreateApi(ListMixin, GenericAPIView):
    """GET lists rows (filter, order, cursor pages); POST creates one, 409 when its natural key is taken.

    Subclasses set ``queryset``, ``filterset_class``, the two serializers and ``key_field``, and
    implement ``perform_create`` (one service call).
    """

    key_field = ""

    def perform_create(self, data: dict):
        raise NotImplementedError

    def created(self, request, row) -> None:
        """Hook: what a new row needs besides its creation, in the same request."""

    def get(self, request):
        return self.list_response(self.OutputSerializer)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = serializer.validated_data[self.key_field]
        model = self.queryset.model
        taken = Conflict(ALREADY_EXISTS.format(model=model._meta.model_name, field=self.key_field, key=key))
        if model.objects.filter(**{self.key_field: key}).exists():
            raise taken
        try:
            row = self.perform_create(serializer.validated_data)
        except IntegrityError as exc:  # a concurrent create won
            raise taken from exc
        self.created(request, row)
        return Response(self.OutputSerializer(row).data, status=status.HTTP_201_CREATED)


class KeyedDetailApi(GenericAPIView):
    """GET one row named by its natural key in the URL, PUT/PATCH its fields, DELETE it.

    Subclasses set the two serializers and implement ``row`` (the lookup, a 404 naming the key),
    ``perform_update`` and ``perform_destroy`` (one service call each).
    """

    def row(self):
        raise NotImplementedError

    def perform_update(self, row, data: dict):
        raise NotImplementedError

    def perform_destroy(self, row) -> None:
        raise NotImplementedError

    def get(self, request, **kwargs):
        return Response(self.OutputSerializer(self.row()).data)

    def put(self, request, **kwargs):
        return self._update(request, partial=False)

    def patch(self, request, **kwargs):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool):
        row = self.row()
        serializer = self.InputSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return Response(self.OutputSerializer(self.perform_update(row, serializer.validated_data)).data)

    def delete(self, request, **kwargs):
        self.perform_destroy(self.row())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- customers ----------------------------------------------------------------------------------

class CustomerFields(serializers.Serializer):
    """Profile fields a PUT/PATCH may change; consent has its own endpoint (``.../consent``)."""

    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    country = serializers.RegexField(r"^[A-Za-z]{2}$", required=False, allow_blank=True, max_length=2,
                                     help_text="ISO 3166-1 alpha-2.")
    attributes = JSONObjectField(required=False)

    def validate_country(self, value: str) -> str:
        return value.upper()

    def validate(self, attrs):
        data = getattr(self, "initial_data", None)
        sent = [f for f in consent.CONSENT_FIELDS if isinstance(data, dict) and f in data]
        if sent and not isinstance(self, CustomerInputSerializer):
            raise serializers.ValidationError(
                {"non_field_errors": [consent.USE_CONSENT_ENDPOINT],
                 **{f: [consent.USE_CONSENT_ENDPOINT] for f in sent}}
            )
        return attrs


class CustomerInputSerializer(CustomerFields):
    """A new customer; the consent it arrives with is recorded as its first consent event."""

    external_id = SafeKeyField(max_length=191)
    email_opt_in = serializers.BooleanField(required=False)
    unsubscribed_at = SaneDateTimeField(required=False, allow_null=True)


class CustomerOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["external_id", "email", "first_name", "last_name", "country", "attributes", "email_opt_in",
                  "unsubscribed_at", "created_at", "updated_at"]


def customer_or_404(external_id: str) -> Customer:
    return found_or_404(selectors.customer_get(external_id=external_id), CUSTOMER_NOT_FOUND.format(key=external_id))


@list_create_schema("customers", CustomerInputSerializer, CustomerOutputSerializer)
class CustomerListCreateApi(KeyedListCreateApi):
    """GET lists customers (filter, order, cursor pages); POST creates one."""

    queryset = Customer.objects.all()
    filterset_class = CustomerFilter
    ordering_fields = ["id", "created_at", "updated_at"]
    InputSerializer = CustomerInputSerializer
    OutputSerializer = CustomerOutputSerializer
    key_field = "external_id"

    def perform_create(self, data: dict) -> Customer:
        return services.customer_create(**data)

    def created(self, request, row: Customer) -> None:
        consent.consent_events_for_new_customers(
            customers=[row], channel=ConsentEvent.Channel.API, actor=request_actor(request)
        )


@detail_schema("customers", CustomerFields, CustomerOutputSerializer)
class CustomerDetailApi(KeyedDetailApi):
    """GET one customer, PUT/PATCH its fields, DELETE erases it (personal data and history)."""

    InputSerializer = CustomerFields
    OutputSerializer = CustomerOutputSerializer

    def row(self) -> Customer:
        return customer_or_404(self.kwargs["external_id"])

    def perform_update(self, row: Customer, data: dict) -> Customer:
        return services.customer_update(customer=row, data=data)

    def perform_destroy(self, row: Customer) -> None:
        services.customer_erase(customer=row)


UpsertResultSerializer = inline_serializer(
    "UpsertResult", {"created": serializers.IntegerField(), "updated": serializers.IntegerField()}
)


class CustomerBulkUpsertApi(GenericAPIView):
    """Create or update up to ``API_BULK_MAX_RECORDS`` customers by ``external_id`` in one request."""

    throttle_scope = "bulk"

    @extend_schema_serializer(component_name="CustomerBulkInput")
    class InputSerializer(serializers.Serializer):
        customers = CustomerInputSerializer(many=True)

    @extend_schema(operation_id="customers_bulk_upsert", request=InputSerializer,
                   responses={200: UpsertResultSerializer})
    def post(self, request):
        clean = _bulk_rows(request, self.InputSerializer, "customers", "external_id")
        if isinstance(clean, Response):
            return clean
        _reject_consent_changes(clean)
        result = services.customer_upsert_many(rows=clean)
        new = [r["external_id"] for r in clean if r.get("email_opt_in") or r.get("unsubscribed_at")]
        if new and result.created:
            created = Customer.objects.filter(external_id__in=new, consent_events__isnull=True)
            consent.consent_events_for_new_customers(
                customers=list(created), channel=ConsentEvent.Channel.API, actor=request_actor(request)
            )
        return Response({"created": result.created, "updated": result.updated})


def _reject_consent_changes(rows: list[dict]) -> None:
    """Existing customers keep their consent in a bulk upsert unless it is sent unchanged."""
    sent = [r for r in rows if any(f in r for f in consent.CONSENT_FIELDS)]
    if not sent:
        return
    stored = {c.external_id: c for c in Customer.objects.filter(external_id__in=[r["external_id"] for r in sent])}
    changed = []
    for row in sent:
        customer = stored.get(row["external_id"])
        if customer is None:
            continue
        opt_in_changed = "email_opt_in" in row and row["email_opt_in"] != customer.email_opt_in
        unsubscribe_changed = "unsubscribed_at" in row and (
            (row["unsubscribed_at"] is None) != (customer.unsubscribed_at is None)
        )
        if opt_in_changed or unsubscribe_changed:
            changed.append(row["external_id"])
    if changed:
        raise exceptions.ValidationError(
            {"customers": [CONSENT_CHANGED_IN_BULK.format(keys=", ".join(sorted(changed)[:20]))]}
        )


class CustomerConsentApi(GenericAPIView):
    """POST records an explicit consent change (opt-in or opt-out) with where it came from.

    The only way the API changes ``email_opt_in`` / ``unsubscribed_at`` of an existing customer;
    each call is stored as a consent event (who: the API key; when; how: ``api``; ``source``).
    """

    @extend_schema_serializer(component_name="CustomerConsentInput")
    class InputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=ConsentEvent.Action.choices)
        source = serializers.CharField(
            max_length=200, help_text="Where the customer gave or withdrew consent, e.g. 'checkout checkbox'."
        )

    @extend_schema_serializer(component_name="ConsentEventOutput")
    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = ConsentEvent
            fields = ["action", "channel", "source", "actor", "created_at"]

    @extend_schema(operation_id="customers_consent", request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request, external_id: str):
        customer = customer_or_404(external_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = consent.customer_consent_record(
            customer=customer, action=serializer.validated_data["action"], channel=ConsentEvent.Channel.API,
            source=serializer.validated_data["source"], actor=request_actor(request),
        )
        return Response(self.OutputSerializer(event).data, status=status.HTTP_201_CREATED)


# --- items --------------------------------------------------------------------------------------

class ItemFields(serializers.Serializer):
    title = serializers.CharField(max_length=500)
    description = serializers.CharField(required=False, allow_blank=True, max_length=100_000)
    category = serializers.CharField(required=False, allow_blank=True, max_length=200)
    tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=100)
    price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False, allow_null=True)
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", required=False, max_length=3)
    url = serializers.URLField(required=False, allow_blank=True, max_length=1000)
    image_url = serializers.URLField(required=False, allow_blank=True, max_length=1000)
    active = serializers.BooleanField(required=False)
    in_stock = serializers.BooleanField(required=False)
    attributes = JSONObjectField(required=False)

    def validate_currency(self, value: str) -> str:
        return value.upper()


class ItemInputSerializer(ItemFields):
    sku = SafeKeyField(max_length=191)


class ItemBulkRowSerializer(ItemInputSerializer):
    title = serializers.CharField(max_length=500, required=False, help_text="Required for new items.")


class ItemOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = ["sku", "title", "description", "category", "tags", "price", "currency", "url", "image_url",
                  "active", "in_stock", "attributes", "created_at", "updated_at"]


def item_or_404(sku: str) -> Item:
    return found_or_404(selectors.item_get(sku=sku), ITEM_NOT_FOUND.format(key=sku))


@list_create_schema("items", ItemInputSerializer, ItemOutputSerializer)
class ItemListCreateApi(KeyedListCreateApi):
    """GET lists items (filter, order, cursor pages); POST creates one."""

    queryset = Item.objects.all()
    filterset_class = ItemFilter
    ordering_fields = ["id", "created_at", "updated_at", "price"]
    InputSerializer = ItemInputSerializer
    OutputSerializer = ItemOutputSerializer
    key_field = "sku"

    def perform_create(self, data: dict) -> Item:
        return services.item_create(**data)


@detail_schema("items", ItemFields, ItemOutputSerializer)
class ItemDetailApi(KeyedDetailApi):
    """GET one item, PUT/PATCH its fields, DELETE it."""

    InputSerializer = ItemFields
    OutputSerializer = ItemOutputSerializer

    def row(self) -> Item:
        return item_or_404(self.kwargs["sku"])

    def perform_update(self, row: Item, data: dict) -> Item:
        return services.item_update(item=row, data=data)

    def perform_destroy(self, row: Item) -> None:
        services.item_delete(item=row)


class ItemBulkUpsertApi(GenericAPIView):
    """Create or update up to ``API_BULK_MAX_RECORDS`` items by ``sku``; new items need a title."""

    throttle_scope = "bulk"

    @extend_schema_serializer(component_name="ItemBulkInput")
    class InputSerializer(serializers.Serializer):
        items = ItemBulkRowSerializer(many=True)

    @extend_schema(operation_id="items_bulk_upsert", request=InputSerializer, responses={200: UpsertResultSerializer})
    def post(self, request):
        clean = _bulk_rows(request, self.InputSerializer, "items", "sku")
        if isinstance(clean, Response):
            return clean
        existing = set(Item.objects.filter(sku__in=[r["sku"] for r in clean if "title" not in r])
                       .values_list("sku", flat=True))
        missing = {f"items[{i}].title": ["Required for a new item."]
                   for i, r in enumerate(clean) if "title" not in r and r["sku"] not in existing}
        if missing:
            raise exceptions.ValidationError(missing)
        result = services.item_upsert_many(rows=clean)
        return Response({"created": result.created, "updated": result.updated})


# --- interactions -------------------------------------------------------------------------------

class InteractionEventSerializer(serializers.Serializer):
    """One event (documentation only: the bulk endpoint validates with ``events_validate``)."""

    event_id = serializers.CharField(max_length=191, help_text="Idempotency key, unique per event.")
    customer = serializers.CharField(max_length=191, help_text="Customer external_id.")
    item = serializers.CharField(max_length=191, help_text="Item SKU.")
    kind = serializers.ChoiceField(choices=Interaction.Kind.choices)
    occurred_at = serializers.DateTimeField(required=False, help_text="ISO 8601; default: now; naive = UTC.")
    value = serializers.FloatField(required=False, allow_null=True)
    quantity = serializers.IntegerField(required=False, min_value=1)
    source = serializers.ChoiceField(choices=Interaction.Source.choices, required=False, help_text="Default: api.")
    order_id = serializers.CharField(
        max_length=MAX_ORDER_ID_LENGTH, required=False, allow_blank=True, allow_null=True,
        help_text="The shop's order id; the lines of one order (basket) share it. Default: none.",
    )


class InteractionOutputSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.external_id")
    item = serializers.CharField(source="item.sku")

    class Meta:
        model = Interaction
        fields = ["event_id", "customer", "item", "kind", "value", "quantity", "occurred_at", "source",
                  "order_id", "created_at"]


class InteractionListApi(ListMixin, GenericAPIView):
    """GET lists stored events, newest id first by default (filter by customer, item, kind, time)."""

    queryset = Interaction.objects.select_related("customer", "item").only(
        "event_id", "kind", "value", "quantity", "occurred_at", "source", "order_id", "created_at",
        "customer__external_id", "item__sku",
    )
    filterset_class = InteractionFilter
    ordering_fields = ["id", "occurred_at"]

    @extend_schema(operation_id="interactions_list", responses=InteractionOutputSerializer(many=True))
    def get(self, request):
        return self.list_response(InteractionOutputSerializer)


class InteractionBulkCreateApi(GenericAPIView):
    """Store up to ``API_BULK_MAX_EVENTS`` events, idempotent on ``event_id``.

    ``?unknown=reject`` (default) refuses the whole batch with a 400 listing unknown customer and
    item ids; ``?unknown=create`` creates bare customers/items for them first.
    """

    throttle_scope = "bulk"

    @extend_schema_serializer(component_name="InteractionBulkInput")
    class InputSerializer(serializers.Serializer):
        events = InteractionEventSerializer(many=True)

    @extend_schema_serializer(component_name="InteractionBulkOutput")
    class OutputSerializer(serializers.Serializer):
        received = serializers.IntegerField()
        created = serializers.IntegerField(help_text="New events stored.")
        duplicates = serializers.IntegerField(help_text="Events whose event_id was already stored (or repeated).")
        customers_created = serializers.IntegerField()
        items_created = serializers.IntegerField()

    @extend_schema(
        operation_id="interactions_bulk_create",
        parameters=[OpenApiParameter("unknown", OpenApiTypes.STR, enum=["reject", "create"],
                                     description="What to do with unknown customers/items (default reject).")],
        request=InputSerializer,
        responses={200: OutputSerializer},
    )
    def post(self, request):
        unknown = request.query_params.get("unknown", "reject")
        if unknown not in ("reject", "create"):
            raise exceptions.ValidationError({"unknown": [UNKNOWN_PARAM]})
        rows = _raw_list(request, "events", settings.API_BULK_MAX_EVENTS)
        if isinstance(rows, Response):
            return rows
        events, errors = events_validate(rows, now=timezone.now())
        if errors:
            raise exceptions.ValidationError(errors)
        try:
            result = services.interaction_ingest_many(events=events, create_unknown=unknown == "create")
        except services.UnknownReferencesError as exc:
            fields = {}
            if exc.customers:
                fields["unknown_customers"] = exc.customers
            if exc.items:
                fields["unknown_items"] = exc.items
            return Response(error_body("unknown_references", UNKNOWN_REFERENCES, fields), status=400)
        return Response(self.OutputSerializer(result).data)


# --- feedback -----------------------------------------------------------------------------------

class FeedbackOutputSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.external_id")
    item = serializers.CharField(source="item.sku", allow_null=True, default=None)

    class Meta:
        model = Feedback
        fields = ["id", "customer", "item", "kind", "comment", "status", "source", "campaign_recipient_id",
                  "created_at"]


class FeedbackListCreateApi(ListMixin, GenericAPIView):
    """GET lists feedback (filter by customer, item, kind, status); POST records one.

    ``not_interested`` (and ``dislike``) take the item out of the customer's stored
    recommendations as soon as the request commits.
    """

    queryset = Feedback.objects.select_related("customer", "item")
    filterset_class = FeedbackFilter

    @extend_schema_serializer(component_name="FeedbackCreateInput")
    class InputSerializer(serializers.Serializer):
        customer = serializers.CharField(max_length=191, help_text="Customer external_id.")
        item = serializers.CharField(max_length=191, required=False, allow_null=True, help_text="Item SKU.")
        kind = serializers.ChoiceField(choices=Feedback.Kind.choices)
        comment = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
        source = serializers.ChoiceField(choices=Feedback.Source.choices, required=False)
        campaign_recipient_id = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                                         max_value=2**63 - 1)

        def validate(self, attrs):
            customer = Customer.objects.filter(external_id=attrs["customer"]).first()
            if customer is None:
                raise serializers.ValidationError({"customer": [CUSTOMER_NOT_FOUND.format(key=attrs["customer"])]})
            attrs["customer"] = customer
            if attrs.get("item"):
                item = Item.objects.filter(sku=attrs["item"]).first()
                if item is None:
                    raise serializers.ValidationError({"item": [ITEM_NOT_FOUND.format(key=attrs["item"])]})
                attrs["item"] = item
            else:
                attrs["item"] = None
            if attrs["kind"] == Feedback.Kind.NOT_INTERESTED and attrs["item"] is None:
                raise serializers.ValidationError({"item": [NOT_INTERESTED_NEEDS_ITEM]})
            recipient_id = attrs.get("campaign_recipient_id")
            if recipient_id is not None and not services.campaign_recipient_belongs_to(
                recipient_id=recipient_id, customer=customer
            ):
                raise serializers.ValidationError({"campaign_recipient_id": [
                    RECIPIENT_NOT_THEIRS.format(key=recipient_id, customer=customer.external_id)]})
            return attrs

    @extend_schema(operation_id="feedback_list", responses=FeedbackOutputSerializer(many=True))
    def get(self, request):
        return self.list_response(FeedbackOutputSerializer)

    @extend_schema(operation_id="feedback_create", request=InputSerializer, responses={201: FeedbackOutputSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        feedback = services.feedback_create(**serializer.validated_data)
        return Response(FeedbackOutputSerializer(feedback).data, status=status.HTTP_201_CREATED)


class FeedbackDetailApi(GenericAPIView):
    @extend_schema(operation_id="feedback_retrieve", responses=FeedbackOutputSerializer)
    def get(self, request, pk: int):
        feedback = found_or_404(
            Feedback.objects.select_related("customer", "item").filter(pk=pk).first(), FEEDBACK_NOT_FOUND.format(key=pk)
        )
        return Response(FeedbackOutputSerializer(feedback).data)

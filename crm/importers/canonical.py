"""The canonical CSV format: ``interactions.csv`` (required), ``items.csv`` and ``customers.csv`` (optional).

See docs/import.md for the columns. Ids used in ``interactions.csv`` that neither optional file
defines become bare customers / items (an id and nothing else; an item's title is its id).
"""
from __future__ import annotations

from crm.erasure import erased_external_ids
from crm.models import MAX_ORDER_ID_LENGTH, Customer, Interaction, Item

from . import writers
from .base import (
    FileSpec,
    Importer,
    RowInvalid,
    boolean,
    email,
    json_object,
    key,
    number,
    positive_int,
    price,
    string_list,
    text,
    timestamp_iso,
    url,
)
from .countries import COUNTRY_CODES

KINDS = frozenset(Interaction.Kind.values)
UNSPECIFIED_COUNTRIES = {"unspecified", "european community", "unknown", "n/a"}


def _country(row: dict[str, str]) -> str:
    """An ISO 3166-1 alpha-2 code, or a common English country name mapped to one."""
    raw = text(row, "country")
    value = raw.upper()
    if len(value) == 2 and value.isalpha():
        return value
    if raw.lower() in UNSPECIFIED_COUNTRIES:
        return ""
    if raw.lower() in COUNTRY_CODES:
        return COUNTRY_CODES[raw.lower()]
    if value:
        raise RowInvalid(f"'country' must be an ISO 3166-1 alpha-2 code or a country name, got {raw!r}.")
    return value


def parse_customer(row: dict[str, str]) -> dict:
    record = {
        "external_id": key(row, "customer_id"),
        "country": _country(row),
        "attributes": json_object(row.get("attributes_json") or "", "attributes_json"),
    }
    if "email" in row:
        record["email"] = email(row["email"] or "")
    for name in ("first_name", "last_name"):
        if name in row:
            record[name] = text(row, name, max_length=150)
    if "email_opt_in" in row:
        record["email_opt_in"] = boolean(row["email_opt_in"] or "", "email_opt_in", default=False)
    return record


def parse_item(row: dict[str, str]) -> dict:
    record = {
        "sku": key(row, "item_id"),
        # A product without a name (common in exports) keeps its id as title rather than failing the import.
        "title": text(row, "title", max_length=500) or text(row, "item_id"),
        "description": text(row, "description"),
        "category": text(row, "category", max_length=200),
        "price": price(row.get("price") or ""),
    }
    for name in ("url", "image_url"):
        if name in row:
            record[name] = url(row[name] or "", name)
    if "tags" in row:
        record["tags"] = string_list(row["tags"] or "", "tags")
    for name in ("active", "in_stock"):
        if name in row:
            record[name] = boolean(row[name] or "", name, default=True)
    return record


def parse_interaction(row: dict[str, str]) -> tuple:
    customer = key(row, "customer_id")
    item = key(row, "item_id")
    kind = text(row, "kind", required=True)
    if kind not in KINDS:
        raise RowInvalid(f"'kind' must be one of {', '.join(sorted(KINDS))}, got {kind!r}.")
    occurred_at = timestamp_iso(text(row, "timestamp", required=True))
    quantity = positive_int(row.get("quantity") or "", "quantity", default=1)
    value = number(row.get("value") or "", "value")
    return customer, item, kind, occurred_at, quantity, value, order_id(row)


def order_id(row: dict[str, str]) -> str:
    """The optional ``order_id``: lines of one order share it (one basket). Empty = unknown."""
    value = text(row, "order_id", max_length=MAX_ORDER_ID_LENGTH)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise RowInvalid("'order_id' must not contain control characters.")
    return value


CUSTOMERS = FileSpec("customers.csv", ("customer_id",), parse_customer, required=False)
ITEMS = FileSpec("items.csv", ("item_id", "title"), parse_item, required=False)
INTERACTIONS = FileSpec("interactions.csv", ("customer_id", "item_id", "kind", "timestamp"), parse_interaction)


class CanonicalImporter(Importer):
    format = "canonical"

    def validate(self) -> None:
        self.customer_fields: set[str] = set()
        self.item_fields: set[str] = set()
        self.defined_customers: set[str] = set()
        self.defined_items: set[str] = set()
        self.event_customers: set[str] = set()
        self.event_items: set[str] = set()
        self.has_customers = self.scanner.exists(CUSTOMERS)
        self.has_items = self.scanner.exists(ITEMS)
        self.scanner.exists(INTERACTIONS)
        if self.has_customers:
            for _line, record in self.scanner.validate(CUSTOMERS):
                self.customer_fields.update(record)
                self.defined_customers.add(record["external_id"])
        if self.has_items:
            for _line, record in self.scanner.validate(ITEMS):
                self.item_fields.update(record)
                self.defined_items.add(record["sku"])
        for _line, (customer, item, *_rest) in self.scanner.validate(INTERACTIONS):
            self.event_customers.add(customer)
            self.event_items.add(item)

    def write(self) -> None:
        # Erased customers (tombstones) are not brought back by old data: no profile or bare row is
        # created for them, and their events dated before the erasure are dropped (counted as skipped).
        erased = erased_external_ids(self.defined_customers | self.event_customers)
        if erased:
            existing = set(Customer.objects.filter(external_id__in=list(erased)).values_list("external_id", flat=True))
            erased = {e: at for e, at in erased.items() if e not in existing}
        if self.has_customers:
            fields = sorted(self.customer_fields - {"external_id"})
            rows = (r for r in self.scanner.read(CUSTOMERS) if r["external_id"] not in erased)
            self.written(CUSTOMERS.name, writers.customers_upsert(rows, update_fields=fields))
        bare = self.event_customers - self.defined_customers - set(erased)
        self.record("customers (from interactions.csv)", read=len(bare), created=writers.customers_create_bare(bare))
        if self.has_items:
            fields = sorted(self.item_fields - {"sku"})
            self.written(ITEMS.name, writers.items_upsert(self.scanner.read(ITEMS), update_fields=fields))
        bare = self.event_items - self.defined_items
        self.record("items (from interactions.csv)", read=len(bare), created=writers.items_create_bare(bare))
        events = self.scanner.read(INTERACTIONS)
        if erased:
            events = self._without_erased(events, erased)
        events = writers.interactions_build(
            events,
            fmt=self.format,
            customer_ids=writers.id_map(Customer, "external_id", self.event_customers - set(erased)),
            item_ids=writers.id_map(Item, "sku", self.event_items),
        )
        self.written(INTERACTIONS.name, writers.interactions_insert(events))
        if erased:
            self.report.file("events of erased customers").skipped = self._erased_skipped

    def _without_erased(self, events, erased: dict):
        self._erased_skipped = 0
        for event in events:
            if event[0] in erased:
                self._erased_skipped += 1
                continue
            yield event

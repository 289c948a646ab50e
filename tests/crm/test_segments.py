"""Segment rules evaluated against hand-built customers, and rule validation."""
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.segments import SegmentRuleError, segment_queryset, validate_rules
from crm.selectors import segment_evaluate, segment_preview
from tests.factories import CustomerFactory, InteractionFactory, ItemFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def ago(days: int):
    return timezone.now() - timedelta(days=days)


@pytest.fixture
def shop():
    """ada: DE, contactable, gold, 3 coffee orders (2 recent); ben: FR, no consent, lapsed, new, browsed books;
    cy: US, unsubscribed, no attributes, no activity."""
    coffee, book = ItemFactory(category="Coffee"), ItemFactory(category="books")
    ada = CustomerFactory(external_id="ada", country="DE", attributes={"tier": "gold", "age": 40}, created_at=ago(400))
    ben = CustomerFactory(
        external_id="ben", country="FR", email_opt_in=False, attributes={"tier": "silver", "age": 25}, created_at=ago(5)
    )
    cy = CustomerFactory(external_id="cy", country="US", unsubscribed_at=ago(1), attributes={}, created_at=ago(200))
    for days in (2, 8, 100):
        InteractionFactory(customer=ada, item=coffee, kind="purchase", occurred_at=ago(days))
    InteractionFactory(customer=ben, item=coffee, kind="purchase", occurred_at=ago(100))
    InteractionFactory(customer=ben, item=book, kind="view", occurred_at=ago(3))
    return {"ada": ada, "ben": ben, "cy": cy}


def names(conditions, match="all") -> list[str]:
    customers = segment_queryset({"match": match, "conditions": conditions})
    return sorted(customers.values_list("external_id", flat=True))


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"field": "country", "op": "in", "value": ["de"]}, ["ada"]),
        ({"field": "country", "value": ["DE", "FR"]}, ["ada", "ben"]),
        ({"field": "country", "op": "not_in", "value": ["DE"]}, ["ben", "cy"]),
        ({"field": "consent", "value": True}, ["ada"]),
        ({"field": "consent"}, ["ada"]),
        ({"field": "consent", "value": False}, ["ben", "cy"]),
        ({"field": "attribute", "key": "tier", "value": "gold"}, ["ada"]),
        ({"field": "attribute", "key": "tier", "op": "eq", "value": "silver"}, ["ben"]),
        ({"field": "attribute", "key": "tier", "op": "in", "value": ["gold", "silver"]}, ["ada", "ben"]),
        ({"field": "attribute", "key": "tier", "op": "exists"}, ["ada", "ben"]),
        ({"field": "attribute", "key": "tier", "op": "exists", "value": False}, ["cy"]),
        ({"field": "attribute", "key": "age", "op": "gt", "value": 30}, ["ada"]),
        ({"field": "attribute", "key": "age", "op": "gte", "value": 25}, ["ada", "ben"]),
        ({"field": "attribute", "key": "age", "op": "lt", "value": 40}, ["ben"]),
        ({"field": "attribute", "key": "age", "op": "lte", "value": 40}, ["ada", "ben"]),
        ({"field": "purchased_within_days", "value": 30}, ["ada"]),
        ({"field": "purchased_within_days", "value": 365}, ["ada", "ben"]),
        ({"field": "no_purchase_within_days", "value": 30}, ["ben", "cy"]),
        ({"field": "interacted_with_category", "value": "coffee"}, ["ada", "ben"]),
        ({"field": "interacted_with_category", "value": "coffee", "days": 30}, ["ada"]),
        ({"field": "interacted_with_category", "value": "Books", "kinds": ["view"]}, ["ben"]),
        ({"field": "interacted_with_category", "value": "books", "kinds": ["purchase"]}, []),
        ({"field": "min_orders", "value": 3}, ["ada"]),
        ({"field": "min_orders", "value": 2, "days": 30}, ["ada"]),
        ({"field": "min_orders", "value": 1}, ["ada", "ben"]),
        ({"field": "min_orders", "value": 0}, ["ada", "ben", "cy"]),
        ({"field": "joined_within_days", "value": 30}, ["ben"]),
    ],
)
def test_each_field_and_op(shop, condition, expected):
    assert names([condition]) == expected


def test_attribute_ne_keeps_customers_with_another_value(shop):
    assert "ben" in names([{"field": "attribute", "key": "tier", "op": "ne", "value": "gold"}])
    assert "ada" not in names([{"field": "attribute", "key": "tier", "op": "ne", "value": "gold"}])


def test_attribute_ne_keeps_customers_without_the_key(shop):
    """"Tier is not gold" should include customers who have no tier at all (cy)."""
    assert names([{"field": "attribute", "key": "tier", "op": "ne", "value": "gold"}]) == ["ben", "cy"]


def test_match_all_and_any(shop):
    conditions = [{"field": "country", "value": ["DE"]}, {"field": "joined_within_days", "value": 30}]
    assert names(conditions, match="all") == []
    assert names(conditions, match="any") == ["ada", "ben"]


def test_empty_rules_match_everyone(shop):
    assert segment_queryset({}).count() == 3
    assert segment_queryset(None).count() == 3
    assert segment_queryset({"match": "any", "conditions": []}).count() == 3


def test_results_are_distinct(shop):
    """Several matching events per customer still yield the customer once."""
    assert names([{"field": "interacted_with_category", "value": "coffee"}], match="any") == ["ada", "ben"]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([], "Rules must be an object with 'match' and 'conditions'."),
        ({"match": "all", "where": []}, "Unknown keys in rules: where."),
        ({"match": "most"}, "'match' must be 'all' or 'any'."),
        ({"conditions": {}}, "'conditions' must be a list."),
        ({"conditions": ["country"]}, "condition 1: a condition must be an object."),
        ({"conditions": [{"field": "shoe_size"}]}, "condition 1: unknown field 'shoe_size'"),
        ({"conditions": [{"field": "country", "op": "eq", "value": ["DE"]}]}, "country op must be 'in' or 'not_in'"),
        ({"conditions": [{"field": "country", "value": "DE"}]}, "country value must be a list of country codes"),
        ({"conditions": [{"field": "consent", "value": "yes"}]}, "consent value must be true or false"),
        ({"conditions": [{"field": "attribute", "value": 1}]}, "attribute conditions need a 'key'"),
        ({"conditions": [{"field": "attribute", "key": "a", "op": "like"}]}, "attribute op must be one of"),
        ({"conditions": [{"field": "attribute", "key": "a", "op": "in", "value": "x"}]}, "the 'in' op needs a list"),
        ({"conditions": [{"field": "interacted_with_category"}]}, "needs a category name as 'value'"),
        (
            {"conditions": [{"field": "interacted_with_category", "value": "x", "kinds": ["hug"]}]},
            "kinds must be a list of",
        ),
        ({"conditions": [{"field": "interacted_with_category", "value": "x", "days": -1}]}, "'days' must be a non-neg"),
        ({"conditions": [{"field": "min_orders", "value": "3"}]}, "'value' must be a non-negative integer, got '3'"),
        ({"conditions": [{"field": "min_orders", "value": 1, "days": True}]}, "'days' must be a non-negative integer"),
        (
            {"conditions": [{"field": "country", "value": ["DE"]}, {"field": "joined_within_days"}]},
            "condition 2: 'value' must be a non-negative integer, got None.",
        ),
    ],
)
def test_invalid_rules_raise_a_clear_error(rules, message):
    with pytest.raises(SegmentRuleError) as excinfo:
        validate_rules(rules)
    assert message in str(excinfo.value)
    with pytest.raises(SegmentRuleError):
        segment_queryset(rules)


def test_segment_clean_reports_rule_errors_on_the_rules_field():
    SegmentFactory.build(rules={"conditions": [{"field": "consent", "value": True}]}).clean()
    with pytest.raises(ValidationError) as excinfo:
        SegmentFactory.build(rules={"match": "most"}).clean()
    assert excinfo.value.message_dict == {"rules": ["'match' must be 'all' or 'any'."]}


def test_segment_evaluate_and_preview(shop):
    # given
    segment = SegmentFactory(rules={"match": "all", "conditions": [{"field": "country", "value": ["DE", "FR"]}]})
    # when
    preview = segment_preview(segment=segment, sample_size=1)
    # then
    assert sorted(segment_evaluate(segment=segment).values_list("external_id", flat=True)) == ["ada", "ben"]
    assert preview.count == 2 and preview.sample == [shop["ben"]]


def test_min_orders_counts_baskets_not_lines(db):
    """A 3-line order is one order; lines without an order id count once per purchase time."""
    from tests.factories import order_create

    items = ItemFactory.create_batch(3)
    basket = CustomerFactory(external_id="basket")
    order_create(customer=basket, items=items, occurred_at=ago(3))
    twice = CustomerFactory(external_id="twice")
    order_create(customer=twice, items=items[:2], occurred_at=ago(3))
    order_create(customer=twice, items=items[:1], occurred_at=ago(3))  # a second order in the same second
    untagged = CustomerFactory(external_id="untagged")
    order_create(customer=untagged, items=items, occurred_at=ago(5), order_id="")
    order_create(customer=untagged, items=items[:1], occurred_at=ago(2), order_id="")
    assert names([{"field": "min_orders", "value": 2}]) == ["twice", "untagged"]
    assert names([{"field": "min_orders", "value": 1}]) == ["basket", "twice", "untagged"]

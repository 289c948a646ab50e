"""The build's bulk selector agrees with recommendation_list_for_customer, customer by customer."""
from __future__ import annotations

from decimal import Decimal

import pytest

from campaigns.selectors import recommendation_snapshots_for_customers, snapshot_from_recommended
from recommendations.selectors import ItemFilters, recommendation_list_for_customer
from tests.campaigns.conftest import recommend
from tests.factories import CustomerFactory, FeedbackFactory, InteractionFactory, ItemFactory

pytestmark = pytest.mark.django_db

CASES = [
    {"limit": 3, "filters": ItemFilters(), "max_per_category": None},
    {"limit": 3, "filters": ItemFilters(category="shoes"), "max_per_category": None},
    {"limit": 4, "filters": ItemFilters(min_price=Decimal("12"), max_price=Decimal("30")), "max_per_category": None},
    {"limit": 4, "filters": ItemFilters(), "max_per_category": 1},
    {"limit": 2, "filters": ItemFilters(), "max_per_category": 2},
]


@pytest.mark.parametrize("case", CASES)
def test_bulk_selector_matches_the_per_customer_selector(version, case):
    """Long lists, short lists (cold start), rejected, bought, demoted and inactive items."""
    # given
    items = [ItemFactory(category=["shoes", "bags", "hats"][i % 3], price=8 + 2 * i) for i in range(40)]
    items[1].in_stock = False
    items[1].save()
    customers = CustomerFactory.create_batch(6)
    recommend(version, customers[0], items)
    recommend(version, customers[1], items[:4])  # short: needs cold start
    recommend(version, customers[2], list(reversed(items)))
    recommend(version, customers[3], items[5:40:2])
    recommend(version, customers[4], items[::3])
    # customers[5]: no stored list at all
    FeedbackFactory(customer=customers[0], item=items[0], kind="dislike")
    InteractionFactory(customer=customers[2], item=items[-1], kind="purchase")
    InteractionFactory(customer=customers[3], item=items[7], kind="view")
    demote = {customers[0].pk: {items[2].pk, items[3].pk}, customers[4].pk: {items[0].pk}}
    # when
    bulk = recommendation_snapshots_for_customers(customers=customers, demote_item_ids=demote, **case)
    # then
    for customer in customers:
        single = recommendation_list_for_customer(
            customer=customer, demote_item_ids=demote.get(customer.pk, set()), **case
        )
        assert bulk[customer.pk] == snapshot_from_recommended(single), customer


def test_bulk_selector_reads_stored_lists_without_per_customer_calls(version, django_assert_max_num_queries):
    """Customers with long enough stored lists cost no per-customer query."""
    items = [ItemFactory() for _ in range(10)]
    customers = CustomerFactory.create_batch(30)
    for customer in customers:
        recommend(version, customer, items)
    with django_assert_max_num_queries(6):
        bulk = recommendation_snapshots_for_customers(customers=customers, limit=5, filters=ItemFilters())
    assert all(len(v) == 5 for v in bulk.values())

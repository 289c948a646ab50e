"""A version trained on orders: the stored and the exported discover lists are the engine's list of
each customer's ORDERS (order id, else the moment), as validation measured it, not of their lines
one by one."""

import csv
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from crm.models import Customer, Interaction, Item
from recommendations.models import Recommendation
from recommendations.selectors import model_version_active
from recommendations.services.scoring import loaded_version


@pytest.fixture
def order_shop(transactional_db, settings, tmp_path):
    """20 customers x 5 orders of 2-4 lines (one timestamp per order); half the shop sends order ids."""
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS,
                                "PARAMS": {"sequential": {"max_epochs": 3, "dim": 16, "max_len": 8}}}
    rng = np.random.default_rng(0)
    items = [Item.objects.create(sku=f"p{n:02d}", title=f"Product {n}", category=f"aisle {n // 6}",
                                 price=Decimal(3 + n % 5), description=f"Product {n} of aisle {n // 6}.")
             for n in range(24)]
    start = timezone.now() - timedelta(days=60)
    event = 0
    for c in range(20):
        customer = Customer.objects.create(external_id=f"c{c:02d}", email=f"c{c:02d}@example.com",
                                           email_opt_in=True)
        aisle = c % 4
        for o in range(5):
            when = start + timedelta(days=7 * o, hours=c)
            lines = rng.choice(np.arange(aisle * 6, aisle * 6 + 6), int(rng.integers(2, 5)), replace=False)
            for item in sorted(lines):
                event += 1
                Interaction.objects.create(customer=customer, item=items[int(item)], kind="purchase",
                                           event_id=f"e{event}", occurred_at=when,
                                           order_id=f"o{c}-{o}" if c % 2 else "")
    return items


def test_stored_and_exported_lists_are_the_engines_list_of_the_customers_orders(order_shop, tmp_path):
    # given
    call_command("train", "--algorithm", "sequential", "--activate")
    # when
    call_command("score")
    out = tmp_path / "recs.csv"
    call_command("export_recommendations", "--k", "5", "--exclude-seen", str(out))
    # then
    version = model_version_active()
    served = loaded_version(version)
    assert served.model.config.baskets
    sku = dict(Item.objects.values_list("id", "sku"))
    exported: dict[str, list[str]] = {}
    with open(out, newline="") as handle:
        for row in csv.DictReader(handle):
            exported.setdefault(row["customer_id"], []).append(row["item_id"])

    def top5(scores, history):
        scores = scores.copy()
        scores[history] = -np.inf
        return [sku[int(served.item_ids[i])] for i in np.argsort(-scores, kind="stable")[:5]]

    differs = 0
    for customer in Customer.objects.all():
        lines = list(customer.interactions.order_by("occurred_at", "id").values_list("item_id", "order_id",
                                                                                        "occurred_at"))
        history = [served.item_index[i] for i, _, _ in lines]
        orders = [order_id or when.timestamp() for _, order_id, when in lines]
        expected = top5(served.model.served_score_histories([history], [orders])[0], history)
        stored = list(Recommendation.objects.filter(model_version=version, customer=customer,
                                                    list=Recommendation.List.DISCOVER)
                      .order_by("rank").values_list("item__sku", flat=True))[:5]
        assert stored == expected
        assert exported[customer.external_id] == expected
        differs += top5(served.model.served_score_histories([history])[0], history) != expected
    assert differs > 0  # one line per position is another list: what was served before

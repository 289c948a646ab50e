"""A small shop with planted tastes: each customer sticks to one category and walks its items in order."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm.models import Customer, Interaction, Item

CATEGORIES = {
    "coffee": ["espresso beans", "filter coffee", "moka pot", "milk frother", "coffee grinder", "latte cups"],
    "running": ["trail shoes", "running socks", "race vest", "energy gels", "sports watch", "insoles"],
    "books": ["crime novel", "poetry book", "history atlas", "sci-fi saga", "cookbook", "travel guide"],
    "garden": ["tomato seeds", "garden hose", "pruning shears", "plant pots", "compost bin", "watering can"],
}


@pytest.fixture
def shop(db, settings, tmp_path):
    """24 customers x 4 categories; each customer buys the first items of their category in order."""
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "PARAMS": {"sequential": {"max_epochs": 3, "dim": 16}}}
    items = {}
    for category, names in CATEGORIES.items():
        for n, name in enumerate(names):
            items[(category, n)] = Item.objects.create(
                sku=f"{category}-{n}",
                title=name.title(),
                category=category,
                price=Decimal(10 + n),
                description=f"A {name} for {category} lovers.",
                url=f"https://shop.example.com/{category}/{n}",
            )
    start = timezone.now() - timedelta(days=30)
    customers = []
    event = 0
    for c in range(24):
        category = list(CATEGORIES)[c % 4]
        customer = Customer.objects.create(
            external_id=f"c{c:02d}",
            email=f"c{c:02d}@example.com",
            country="DE" if c % 2 else "FR",
            email_opt_in=True,
        )
        customers.append(customer)
        depth = 3 + c % 3
        for n in range(depth):
            event += 1
            Interaction.objects.create(
                customer=customer,
                item=items[(category, n)],
                kind="purchase",
                event_id=f"e{event}",
                occurred_at=start + timedelta(hours=event),
            )
    return {"items": items, "customers": customers}

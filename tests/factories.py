"""factory_boy factories for every model the tests build by hand."""
import itertools
from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from crm.models import Customer, Feedback, Interaction, Item, Segment


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"cust-{n:05d}")
    email = factory.LazyAttribute(lambda o: f"{o.external_id}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    country = "DE"
    email_opt_in = True


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    title = factory.Sequence(lambda n: f"Product {n}")
    description = "A fine product."
    category = "general"
    price = Decimal("19.99")
    url = factory.LazyAttribute(lambda o: f"https://shop.example.com/p/{o.sku}")


class InteractionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Interaction

    customer = factory.SubFactory(CustomerFactory)
    item = factory.SubFactory(ItemFactory)
    kind = Interaction.Kind.VIEW
    occurred_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    event_id = factory.Sequence(lambda n: f"evt-{n:07d}")


class FeedbackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feedback

    customer = factory.SubFactory(CustomerFactory)
    item = factory.SubFactory(ItemFactory)
    kind = Feedback.Kind.LIKE


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    name = factory.Sequence(lambda n: f"Segment {n}")
    rules = factory.LazyFunction(dict)


def order_create(
    *,
    customer: Customer,
    items: list[Item],
    occurred_at=None,
    order_id: str | None = None,
    kind: str = Interaction.Kind.PURCHASE,
) -> list[Interaction]:
    """One order the way shop exports write it: one purchase line per item, all at the same
    timestamp, in product-code (SKU) order, sharing one ``order_id`` (a fresh one unless given;
    pass ``""`` for an export without order ids, where the shared timestamp alone makes the basket).
    """
    occurred_at = occurred_at or timezone.now() - timedelta(days=1)
    if order_id is None:
        order_id = f"ord-{next(_order_numbers):07d}"
    return [
        InteractionFactory(customer=customer, item=item, kind=kind, occurred_at=occurred_at, order_id=order_id,
                           value=float(item.price) if item.price is not None else None)
        for item in sorted(items, key=lambda i: i.sku)
    ]


_order_numbers = itertools.count(1)

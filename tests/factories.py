"""factory_boy factories for every model the tests build by hand."""
import itertools
from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from campaigns.delivery_models import (
    DeliveryEvent,
    RecipientDelivery,
    SendWave,
    Suppression,
    WebhookDelivery,
    WebhookSubscription,
)
from campaigns.models import Campaign, Recipient
from crm.erasure import external_id_hash
from crm.models import Customer, ErasedCustomer, Feedback, Interaction, Item, Segment


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


class ErasedCustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ErasedCustomer

    external_id_hash = factory.Sequence(lambda n: external_id_hash(f"erased-{n:05d}"))


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")


class RecipientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Recipient

    campaign = factory.SubFactory(CampaignFactory)
    # An existing customer when there is one, so delivery rows hang off the test's shop instead of
    # adding customers that segments and counts would see.
    customer = factory.LazyFunction(lambda: Customer.objects.order_by("pk").first() or CustomerFactory())
    email = factory.LazyAttribute(lambda o: o.customer.email)


class RecipientDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RecipientDelivery

    recipient = factory.SubFactory(RecipientFactory)
    esp = "smtp"
    provider_message_id = factory.Sequence(lambda n: f"<msg-{n:05d}@example.com>")


class DeliveryEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeliveryEvent

    esp = "postmark"
    event_id = factory.Sequence(lambda n: f"event-{n:05d}")
    event_type = "delivered"
    recipient = factory.SubFactory(RecipientFactory)
    email = factory.LazyAttribute(lambda o: o.recipient.email)
    occurred_at = factory.LazyFunction(timezone.now)


class SuppressionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Suppression

    email = factory.Sequence(lambda n: f"bounced-{n:05d}@example.com")
    reason = Suppression.Reason.HARD_BOUNCE


class SendWaveFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SendWave

    campaign = factory.SubFactory(CampaignFactory)
    send_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=2))
    time_zones = factory.LazyFunction(lambda: ["Europe/Berlin"])
    customers = 1


class WebhookSubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookSubscription

    name = factory.Sequence(lambda n: f"Hook {n}")
    url = "https://hooks.example.com/tailored"
    secret = "s3cret-for-tests"
    event_types = factory.LazyFunction(lambda: [WebhookSubscription.EventType.CAMPAIGN_SENT.value])


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookDelivery

    subscription = factory.SubFactory(WebhookSubscriptionFactory)
    event_type = WebhookSubscription.EventType.CAMPAIGN_SENT.value
    dedupe_key = factory.Sequence(lambda n: f"recipient:{n}")
    payload = factory.LazyFunction(lambda: {"recipient": 1})


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

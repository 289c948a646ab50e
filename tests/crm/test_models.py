"""Constraints and row-level rules of the CRM core models."""
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.models import Customer, Feedback, Item
from tests.factories import CustomerFactory, FeedbackFactory, InteractionFactory, ItemFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("factory", "field", "value"),
    [(CustomerFactory, "external_id", "dup"), (ItemFactory, "sku", "dup"), (InteractionFactory, "event_id", "dup")],
)
def test_natural_keys_are_unique(factory, field, value):
    # given
    factory(**{field: value})
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        factory(**{field: value})


def test_item_price_may_not_be_negative():
    ItemFactory(price=Decimal("0"))
    ItemFactory(price=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        ItemFactory(price=Decimal("-0.01"))


def test_interaction_quantity_must_be_positive():
    with pytest.raises(IntegrityError), transaction.atomic():
        InteractionFactory(quantity=0)


def test_not_interested_feedback_needs_an_item():
    FeedbackFactory(kind=Feedback.Kind.LIKE, item=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        FeedbackFactory(kind=Feedback.Kind.NOT_INTERESTED, item=None)


def test_contactable_needs_address_opt_in_and_no_unsubscribe():
    # given
    ok = CustomerFactory(email_opt_in=True)
    CustomerFactory(email_opt_in=False)
    CustomerFactory(email="", email_opt_in=True)
    CustomerFactory(email_opt_in=True, unsubscribed_at=timezone.now())
    # when
    contactable = list(Customer.objects.contactable())
    # then
    assert contactable == [ok]
    assert [c.is_contactable for c in Customer.objects.order_by("id")] == [True, False, False, False]


def test_available_items_are_active_and_in_stock():
    ok = ItemFactory()
    ItemFactory(active=False)
    ItemFactory(in_stock=False)
    assert list(Item.objects.available()) == [ok]


def test_item_tags_must_be_a_list_of_strings():
    ItemFactory.build(tags=["a", "b"]).clean()
    for bad in ("a,b", [1, 2], {"a": 1}):
        with pytest.raises(ValidationError, match="Tags must be a list of strings"):
            ItemFactory.build(tags=bad).clean()


def test_item_text_joins_title_description_category_and_tags():
    item = ItemFactory.build(title="Shoe", description="Fast.", category="running", tags=["trail", "red"])
    assert item.text == "Shoe\nFast.\nrunning\ntrail, red"
    assert ItemFactory.build(title="Bare", description="", category="", tags=[]).text == "Bare"


def test_customer_names_and_str():
    assert str(CustomerFactory.build(first_name="Ada", last_name="Lovelace")) == "Ada Lovelace"
    assert str(CustomerFactory.build(first_name="", last_name="", email="a@example.com")) == "a@example.com"
    assert str(CustomerFactory.build(first_name="", last_name="", email="", external_id="x1")) == "x1"

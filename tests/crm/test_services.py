"""Write-side services of the CRM core: events, feedback, consent, export and erasure."""
from datetime import UTC, datetime

import pytest

from crm.models import Customer, Feedback, Interaction
from crm.services import customer_erase, customer_export, customer_unsubscribe, feedback_create, interaction_record
from crm.signals import customer_erasing, feedback_recorded
from tests.factories import CustomerFactory, FeedbackFactory, InteractionFactory, ItemFactory

pytestmark = pytest.mark.django_db


def test_interaction_record_replay_is_idempotent():
    # given
    customer, item = CustomerFactory(), ItemFactory()
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)
    # when
    first, created = interaction_record(customer=customer, item=item, kind="purchase", event_id="e1", occurred_at=at)
    again, created_again = interaction_record(
        customer=customer, item=item, kind="view", event_id="e1", occurred_at=datetime.now(UTC)
    )
    # then
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk and again.kind == "purchase" and again.occurred_at == at
    assert Interaction.objects.count() == 1


def test_interaction_record_defaults():
    interaction, _ = interaction_record(customer=CustomerFactory(), item=ItemFactory(), kind="view", event_id="e2")
    assert (interaction.source, interaction.quantity, interaction.value) == ("web", 1, None)
    assert interaction.occurred_at is not None


def test_customer_unsubscribe_withdraws_consent_once():
    # given
    customer = CustomerFactory(email_opt_in=True)
    at = datetime(2024, 6, 1, tzinfo=UTC)
    # when
    first = customer_unsubscribe(customer=customer, at=at)
    second = customer_unsubscribe(customer=customer)
    # then
    assert (first, second) == (True, False)
    assert (customer.unsubscribed_at, customer.consent_updated_at, customer.email_opt_in) == (at, at, False)
    assert not Customer.objects.contactable().exists()


def test_feedback_create_signals_after_commit(django_capture_on_commit_callbacks):
    # given
    received = []

    def receiver(sender, feedback, **kwargs):
        received.append(feedback)

    feedback_recorded.connect(receiver, dispatch_uid="test-feedback")
    try:
        # when
        with django_capture_on_commit_callbacks(execute=True):
            feedback = feedback_create(customer=CustomerFactory(), item=ItemFactory(), kind=Feedback.Kind.DISLIKE)
    finally:
        feedback_recorded.disconnect(dispatch_uid="test-feedback")
    # then
    assert received == [feedback]


def test_customer_export_contains_profile_events_and_feedback():
    # given
    customer = CustomerFactory(external_id="x1", attributes={"tier": "gold"})
    InteractionFactory(customer=customer, item=ItemFactory(sku="S1"), kind="purchase", event_id="ev", value=9.5)
    FeedbackFactory(customer=customer, item=None, kind=Feedback.Kind.COMPLAINT, comment="too many mails")
    InteractionFactory()  # someone else's
    # when
    data = customer_export(customer=customer)
    # then
    assert data["customer"]["external_id"] == "x1"
    assert data["customer"]["attributes"] == {"tier": "gold"}
    assert [(i["item"], i["kind"], i["value"], i["event_id"]) for i in data["interactions"]] == [
        ("S1", "purchase", 9.5, "ev")
    ]
    assert [(f["item"], f["kind"], f["comment"]) for f in data["feedback"]] == [(None, "complaint", "too many mails")]


def test_customer_erase_deletes_everything_and_tells_downstream():
    # given
    customer = CustomerFactory()
    InteractionFactory(customer=customer)
    FeedbackFactory(customer=customer)
    other = InteractionFactory()
    erased = []

    def receiver(sender, customer, **kwargs):
        erased.append(customer.pk)

    customer_erasing.connect(receiver, dispatch_uid="test-erase")
    try:
        # when
        customer_erase(customer=customer)
    finally:
        customer_erasing.disconnect(dispatch_uid="test-erase")
    # then
    assert erased and not Customer.objects.filter(pk=erased[0]).exists()
    assert list(Interaction.objects.all()) == [other]
    assert not Feedback.objects.exists()

"""Scoring and serving: atomic swap, business rules, reasons, cold start."""

import pytest
from django.db import IntegrityError

from crm.models import Customer, Feedback, Item
from crm.services import feedback_create
from recommendations.models import ModelVersion, Recommendation, TrainingRun
from recommendations.selectors import (
    ItemFilters,
    cold_start_for_customer,
    model_version_active,
    recommendation_list_for_customer,
)
from recommendations.services.registry import model_version_activate, model_version_rollback
from recommendations.services.scoring import customer_shards, model_version_score_shard, model_version_scored
from recommendations.services.training import training_run_execute


@pytest.fixture
def served(shop):
    run = TrainingRun.objects.create(algorithm="itemknn", force_activate=True)
    training_run_execute(run=run)
    return model_version_active()


def test_stored_lists_follow_business_rules(served, shop):
    """No purchased items, only available ones, at most TOP_K, ranks 1..n, every row has a reason."""
    customer = shop["customers"][0]
    rows = list(Recommendation.objects.filter(model_version=served, customer=customer).select_related("item"))
    bought = set(customer.interactions.filter(kind="purchase").values_list("item_id", flat=True))
    assert rows and len(rows) <= 50
    assert [r.rank for r in rows] == list(range(1, len(rows) + 1))
    assert not bought & {r.item_id for r in rows}
    assert all(r.reason for r in rows)
    assert all(0.0 <= r.probability <= 1.0 for r in rows)
    # the next coffee item is the top pick of a coffee customer, explained by what they bought
    assert rows[0].item.category == "coffee"
    assert rows[0].reason.startswith(("because you bought", "new, similar to", "popular"))


def test_serving_filters_and_rules(served, shop):
    customer = shop["customers"][0]
    # given an item that went out of stock and one the customer rejected
    first, second = recommendation_list_for_customer(customer=customer, limit=2)
    Item.objects.filter(pk=first.item.pk).update(in_stock=False)
    Feedback.objects.create(customer=customer, item=second.item, kind=Feedback.Kind.NOT_INTERESTED)
    # when
    recs = recommendation_list_for_customer(customer=customer, limit=10)
    # then
    shown = {r.item.pk for r in recs}
    assert first.item.pk not in shown and second.item.pk not in shown
    assert len(recs) == 10 and [r.rank for r in recs] == list(range(1, 11))
    books = recommendation_list_for_customer(customer=customer, limit=3, filters=ItemFilters(category="books"))
    assert books and {r.item.category for r in books} == {"books"}
    cheap = recommendation_list_for_customer(customer=customer, limit=5, filters=ItemFilters(max_price=11))
    assert all(r.item.price <= 11 for r in cheap)
    diverse = recommendation_list_for_customer(customer=customer, limit=4, max_per_category=1)
    assert len({r.item.category for r in diverse}) == 4


def test_demoted_items_go_to_the_back(served, shop):
    customer = shop["customers"][0]
    top = recommendation_list_for_customer(customer=customer, limit=3)
    rotated = recommendation_list_for_customer(customer=customer, limit=3, demote_item_ids=[top[0].item.pk])
    assert top[0].item.pk not in {r.item.pk for r in rotated}


def test_not_interested_removes_the_item_at_once(served, shop, django_capture_on_commit_callbacks):
    customer = shop["customers"][1]
    item = Recommendation.objects.filter(model_version=served, customer=customer).first().item
    with django_capture_on_commit_callbacks(execute=True):
        feedback_create(customer=customer, item=item, kind=Feedback.Kind.NOT_INTERESTED)
    assert not Recommendation.objects.filter(customer=customer, item=item).exists()


def test_readers_never_see_a_half_written_version(served, shop):
    """While a new version is being scored, readers get the old one; the flip is one commit."""
    customer = shop["customers"][2]
    before = [r.item.pk for r in recommendation_list_for_customer(customer=customer, limit=5)]
    challenger = ModelVersion.objects.create(
        algorithm=served.algorithm, artifact_path=served.artifact_path, status=ModelVersion.Status.SCORING
    )
    lo, hi = customer_shards(shards=2)[0]
    model_version_score_shard(version=challenger, lo=lo, hi=hi)  # half the customers written
    assert model_version_active() == served
    assert [r.item.pk for r in recommendation_list_for_customer(customer=customer, limit=5)] == before
    for lo, hi in customer_shards(shards=2)[1:]:
        model_version_score_shard(version=challenger, lo=lo, hi=hi)
    model_version_scored(version=challenger, activate=True)
    assert model_version_active() == challenger
    served.refresh_from_db()
    assert not served.is_active and served.status == ModelVersion.Status.RETIRED


def test_exactly_one_active_version(served):
    with pytest.raises(IntegrityError):
        ModelVersion.objects.create(algorithm="popularity", is_active=True, status="ready")


def test_rollback_restores_previous_version(served, shop):
    run = TrainingRun.objects.create(algorithm="popularity", force_activate=True)
    training_run_execute(run=run)
    assert model_version_active().algorithm == "popularity"
    model_version_rollback()
    assert model_version_active() == served


def test_unscored_version_cannot_be_activated(served):
    fresh = ModelVersion.objects.create(algorithm="popularity", status=ModelVersion.Status.TRAINED)
    with pytest.raises(ValueError, match="Only a scored version"):
        model_version_activate(version=fresh)


def test_new_customer_gets_cold_start_not_nothing(served, shop):
    newcomer = Customer.objects.create(external_id="new", country="DE", email_opt_in=True)
    recs = recommendation_list_for_customer(customer=newcomer, limit=5)
    assert len(recs) == 5
    assert all(r.source == "cold_start" for r in recs)
    assert recs[0].reason == "popular in DE"


def test_cold_start_uses_text_similarity_to_fresh_events(served, shop):
    """A customer whose only event came after scoring gets items whose text resembles it."""
    newcomer = Customer.objects.create(external_id="fresh", country="FR", email_opt_in=True)
    newcomer.interactions.create(
        item=shop["items"][("garden", 0)], kind="view", event_id="fresh-1", occurred_at=served.created_at
    )
    recs = cold_start_for_customer(customer=newcomer, limit=3)
    assert any(r.reason.startswith("similar to") for r in recs)

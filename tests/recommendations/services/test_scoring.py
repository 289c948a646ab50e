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

from .helpers import buy_again_ranker_ensure


@pytest.fixture
def served(shop):
    run = TrainingRun.objects.create(algorithm="itemknn", force_activate=True)
    training_run_execute(run=run)
    return model_version_active()


def test_stored_lists_follow_business_rules(served, shop):
    """No purchased items, only available ones, at most TOP_K, ranks 1..n, every row has a reason."""
    customer = shop["customers"][0]
    rows = list(Recommendation.objects.filter(model_version=served, customer=customer, list="discover")
                .select_related("item"))
    bought = set(customer.interactions.filter(kind="purchase").values_list("item_id", flat=True))
    assert rows and len(rows) <= 50
    assert [r.rank for r in rows] == list(range(1, len(rows) + 1))
    assert not bought & {r.item_id for r in rows}
    assert all(r.reason for r in rows)
    assert all(0.0 <= r.probability <= 1.0 for r in rows)
    # the next coffee item is the top pick of a coffee customer, explained by what they bought
    assert rows[0].item.category == "coffee"
    assert rows[0].reason.startswith(("because you bought", "new, similar to", "new in store, like", "popular"))


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


# --- two lists: discover and buy again ---------------------------------------------------------


@pytest.fixture
def regulars(shop):
    """Customers 0-3 re-order their first two products every week (one order, two lines, same
    timestamp); customer 5 unsubscribed. Then a model is trained and both lists are scored."""
    from datetime import timedelta

    from django.utils import timezone

    from recommendations.services.scoring import model_version_rescore
    from tests.factories import order_create

    items = shop["items"]
    now = timezone.now()
    for c in range(4):
        category = ["coffee", "running", "books", "garden"][c]
        for weeks in (3, 2, 1):
            order_create(customer=shop["customers"][c], items=[items[(category, 0)], items[(category, 1)]],
                         occurred_at=now - timedelta(weeks=weeks))
    Customer.objects.filter(pk=shop["customers"][5].pk).update(unsubscribed_at=now)
    run = TrainingRun.objects.create(algorithm="itemknn", force_activate=True)
    training_run_execute(run=run)
    return model_version_rescore(version=buy_again_ranker_ensure(model_version_active()))


def _rows(version, customer, list_name):
    return list(
        Recommendation.objects.filter(model_version=version, customer=customer, list=list_name)
        .select_related("item").order_by("rank")
    )


def test_list_names_are_the_engines(db):
    from recommendations.engine.tasks import LIST_BUY_AGAIN, LIST_DISCOVER

    assert Recommendation.List.DISCOVER == LIST_DISCOVER and Recommendation.List.BUY_AGAIN == LIST_BUY_AGAIN


def test_scoring_writes_a_discover_and_a_buy_again_list(regulars, shop):
    customer = shop["customers"][0]
    bought = set(customer.interactions.filter(kind="purchase").values_list("item_id", flat=True))
    discover = _rows(regulars, customer, "discover")
    again = _rows(regulars, customer, "buy_again")
    # discover exactly as before: never what the customer bought
    assert discover and not bought & {r.item_id for r in discover}
    # buy again: only what they bought, each once, ranks 1..n, the weekly regulars first
    assert {r.item_id for r in again} == bought
    assert [r.rank for r in again] == list(range(1, len(again) + 1))
    weekly = {shop["items"][("coffee", 0)].pk, shop["items"][("coffee", 1)].pk}
    assert {r.item_id for r in again[:2]} == weekly
    assert again[0].score >= again[-1].score


def test_buy_again_reasons_say_which_kind_of_list_it_is(regulars, shop):
    import re

    again = _rows(regulars, shop["customers"][0], "buy_again")
    reasons = {r.item.sku: r.reason for r in again}
    # bought ~30 days ago, then 3, 2 and 1 weeks ago: about every 8 days
    assert reasons["coffee-0"] == "you buy this about every 8 days"
    assert re.fullmatch(r"you bought this \d+ (days|weeks) ago", reasons["coffee-2"])
    assert all(r.reason.startswith(("you buy this", "you bought this")) for r in again)


def test_unsubscribed_customers_get_no_list_at_all(regulars, shop):
    gone = shop["customers"][5]
    assert not Recommendation.objects.filter(model_version=regulars, customer=gone).exists()


def test_rejected_and_unavailable_items_leave_the_buy_again_list(shop, regulars):
    from recommendations.services.scoring import model_version_rescore

    customer = shop["customers"][1]
    rejected, gone = shop["items"][("running", 0)], shop["items"][("running", 1)]
    Feedback.objects.create(customer=customer, item=rejected, kind=Feedback.Kind.DISLIKE)
    Item.objects.filter(pk=gone.pk).update(active=False)
    version = model_version_rescore()
    kept = {r.item_id for r in _rows(version, customer, "buy_again")}
    assert kept and rejected.pk not in kept and gone.pk not in kept


def test_a_version_without_a_buy_again_ranker_stores_only_discover(shop, regulars):
    import shutil
    from pathlib import Path

    from recommendations.engine.models import BUY_AGAIN_DIR
    from recommendations.services.scoring import model_version_rescore

    shutil.rmtree(Path(regulars.artifact_path) / BUY_AGAIN_DIR)
    version = model_version_rescore()
    assert version.recommendations.filter(list="discover").exists()
    assert not version.recommendations.filter(list="buy_again").exists()
    # serving still answers from the purchase history
    recs = recommendation_list_for_customer(customer=shop["customers"][0], limit=3, list_name="buy_again")
    assert [r.item.sku for r in recs][:2] in (["coffee-0", "coffee-1"], ["coffee-1", "coffee-0"])
    assert {r.source for r in recs} == {"history"}


def test_serving_reads_the_asked_list(regulars, shop):
    customer = shop["customers"][0]
    bought = set(customer.interactions.filter(kind="purchase").values_list("item_id", flat=True))
    discover = recommendation_list_for_customer(customer=customer, limit=5)
    again = recommendation_list_for_customer(customer=customer, limit=5, list_name="buy_again")
    assert not bought & {r.item.pk for r in discover}
    assert {r.item.pk for r in again} <= bought and {r.source for r in again} == {"model"}
    with pytest.raises(ValueError, match="Unknown recommendation list"):
        recommendation_list_for_customer(customer=customer, list_name="buy-again")

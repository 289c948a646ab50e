"""The time rules of a CPU training run: the run budget, the sequential candidate's share of it, and
the EASE item cap passed from the settings."""

import re
import time

import pytest

from recommendations.models import TrainingRun
from recommendations.services.training import (
    MIN_SEQUENTIAL_SECONDS,
    POST_FIT_PASSES,
    RESERVE_FIXED_SECONDS,
    SCORING_PASS_FACTOR,
    reserve_seconds,
    sequential_budget,
    training_run_execute,
)


def _run(algorithm: str) -> TrainingRun:
    run = TrainingRun.objects.create(algorithm=algorithm)
    training_run_execute(run=run)
    run.refresh_from_db()
    return run


def test_the_reserve_grows_with_customers_with_the_measured_validation_pass_and_with_the_refit():
    # calibration + test pass after the fit, + scoring 10x as many customers as one validation pass sees
    passes = POST_FIT_PASSES + SCORING_PASS_FACTOR * 10
    assert reserve_seconds(2.0, n_customers=10_000, n_valid_customers=1_000) == RESERVE_FIXED_SECONDS + passes * 2.0
    assert reserve_seconds(2.0, 20_000, 1_000) > reserve_seconds(2.0, 10_000, 1_000)
    assert reserve_seconds(4.0, 10_000, 1_000) > reserve_seconds(2.0, 10_000, 1_000)
    assert reserve_seconds(2.0, 10_000, 1_000, refit_seconds=50.0) == reserve_seconds(2.0, 10_000, 1_000) + 50.0
    assert reserve_seconds(0.0, 10, 0) == RESERVE_FIXED_SECONDS  # nothing measured yet, no validation


def test_a_slow_stage_before_the_candidates_comes_out_of_the_sequential_budget(shop, settings, monkeypatch):
    """Every stage before the sequential fit is charged to the run budget (here a buy-again fit made
    3 s slower), and the reserve for what follows covers the winner's refit on every event."""
    from recommendations.services import training

    settings.RECOMMENDATIONS = {
        **settings.RECOMMENDATIONS, "AUTO_CANDIDATES": ["popularity", "ease", "sequential"], "DEVICE": "cpu",
        "TRAINING_TIME_BUDGET_SECONDS": 1000, "SEQUENTIAL_TIME_BUDGET_SECONDS": 2000,
        "PARAMS": {"sequential": {"max_epochs": 1, "dim": 16, "use_text": False}},
    }
    fit_buy_again = training.fit_buy_again
    monkeypatch.setattr(training, "fit_buy_again", lambda *a, **k: time.sleep(3) or fit_buy_again(*a, **k))
    run = _run("auto")
    assert run.status == TrainingRun.Status.SUCCEEDED
    budget, left, reserve = map(float, re.search(
        r"sequential: time budget (\d+)s \(run budget left (\d+)s, reserve (\d+)s\)", run.log).groups())
    assert left <= 1000 - 3
    assert abs(budget - (left - reserve)) <= 1  # what is left after the reserve (rounded in the log)
    ease_fit = run.model_version.metrics["candidates"]["ease"]["fit_seconds"]
    assert reserve >= RESERVE_FIXED_SECONDS + ease_fit - 1  # the refit's share, at least its fit on split.train


@pytest.mark.parametrize(
    "cap,left,reserve,expected",
    [
        (480, 2000, 100, 480),  # plenty left: its own cap
        (480, 400, 100, 300),  # what the run has left after the reserve
        (480, 100, 100, MIN_SEQUENTIAL_SECONDS),  # never less than a couple of epochs
        (480, -50, 100, MIN_SEQUENTIAL_SECONDS),  # already late: still the floor, not a negative budget
        (None, 10, 100, None),  # a GPU fit has no time cap
    ],
)
def test_sequential_budget(cap, left, reserve, expected):
    assert sequential_budget(cap, left, reserve) == expected


def test_a_spent_run_budget_gives_the_sequential_candidate_the_floor(shop, settings):
    settings.RECOMMENDATIONS = {
        **settings.RECOMMENDATIONS, "AUTO_CANDIDATES": ["popularity", "sequential"], "DEVICE": "cpu",
        "TRAINING_TIME_BUDGET_SECONDS": 0, "SEQUENTIAL_TIME_BUDGET_SECONDS": 480,
        "PARAMS": {"sequential": {"max_epochs": 1, "dim": 16, "use_text": False}},
    }
    run = _run("auto")
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert f"sequential: time budget {MIN_SEQUENTIAL_SECONDS:.0f}s" in run.log
    row = next(r for r in run.model_version.metrics["candidates"].values() if "validation_seconds" in r)
    assert row["validation_seconds"] is not None


def test_without_a_run_budget_the_sequential_candidate_keeps_its_own_cap(shop, settings):
    settings.RECOMMENDATIONS = {
        **settings.RECOMMENDATIONS, "AUTO_CANDIDATES": ["popularity", "sequential"], "DEVICE": "cpu",
        "TRAINING_TIME_BUDGET_SECONDS": None, "SEQUENTIAL_TIME_BUDGET_SECONDS": 480,
        "PARAMS": {"sequential": {"max_epochs": 1, "dim": 16, "use_text": False}},
    }
    run = _run("auto")
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert "time budget" not in run.log


def test_the_ease_item_cap_comes_from_the_settings(shop, settings):
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "EASE_MAX_ITEMS": 7}
    run = _run("ease")
    assert run.model_version.params["max_items"] == 7


def test_items_with_the_same_text_are_encoded_once(db):
    from crm.models import Item
    from recommendations.models import ItemEmbedding
    from recommendations.services.embedding import item_embeddings_refresh, text_encoder

    for n in range(3):
        Item.objects.create(sku=f"tee-{n}", title="Cotton T-shirt", category="shirts")
    Item.objects.create(sku="mug", title="Coffee mug", category="kitchen")
    encoder = text_encoder()
    seen: list[str] = []
    encode = encoder.encode
    try:
        encoder.encode = lambda texts, **kw: seen.extend(texts) or encode(texts, **kw)
        counts = item_embeddings_refresh(encoder=encoder)
    finally:
        encoder.encode = encode
    assert counts["embedded"] == 4
    assert sorted(seen) == ["Coffee mug. kitchen", "Cotton T-shirt. shirts"]
    vectors = {e.item.sku: ItemEmbedding.decode_vector(e.vector) for e in ItemEmbedding.objects.select_related("item")}
    assert (vectors["tee-0"] == vectors["tee-2"]).all() and not (vectors["tee-0"] == vectors["mug"]).all()


def test_a_closed_form_winner_is_served_with_weights_learnt_from_every_event(shop):
    from recommendations.engine.models import load_recommender

    run = _run("popularity")
    version = run.model_version
    served = load_recommender(version.artifact_path)
    assert "refit popularity on every event" in run.log
    assert int(served._item_pop.sum()) == version.data_stats["events"]  # not just split.train's
    assert version.timings["refit_seconds"] >= 0

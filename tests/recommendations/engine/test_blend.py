"""EASE + trending: the mix chosen on validation, time-consistent, and selected only beyond noise.

Two synthetic shops where the right weight is known: the drifting shop (promotions move the best
sellers every week, no co-purchase structure: trending's signal) and the planted clusters
(customers buy within their cluster, no trend: EASE's signal)."""

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.engine.data import build_dataset, leave_last_out_split
from recommendations.engine.metrics import evaluate
from recommendations.engine.models import load_recommender, make_recommender
from recommendations.engine.models.blend import TREND_WEIGHT_GRID, standardise
from recommendations.engine.models.popularity import HALF_LIFE_GRID_DAYS
from recommendations.engine.synthetic import drifting_shop
from recommendations.engine.train import fit_recommender


@pytest.fixture(scope="module")
def drifting_split():
    shop = drifting_shop(days=120, seed=0)
    return leave_last_out_split(build_dataset(shop.events, item_keys=shop.item_keys)[0])


def _fit(split, **params):
    return make_recommender("ease_trending", {"l2": 10.0, **params}).fit(
        split.train, valid=split.valid, valid_now=split.valid_now)


def test_standardise_takes_the_scale_from_the_unbought_items_only():
    scores = np.array([[100.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]], np.float32)
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]], np.float32))
    z = standardise(scores, seen)
    np.testing.assert_allclose(z[0, 1:], [-np.sqrt(1.5), 0.0, np.sqrt(1.5)], rtol=1e-5)
    np.testing.assert_allclose(z[1], 0.0)  # no spread: no signal, no division by zero


def test_the_weight_follows_the_signal_of_the_shop(drifting_split, clusters_split):
    trend_shop = _fit(drifting_split)
    measured = trend_shop.fit_info["blend_valid_ndcg@10"]
    assert len(measured) == len(TREND_WEIGHT_GRID) * len(HALF_LIFE_GRID_DAYS)
    assert trend_shop.config.trend_weight >= 0.8  # promotions: mostly what sells now
    assert measured[f"w={trend_shop.config.trend_weight:g},half_life={trend_shop.config.half_life_days:g}"] \
        == max(measured.values())
    assert measured["w=0,half_life=7"] < 0.5 * max(measured.values())  # EASE's order alone is far behind
    cluster_shop = _fit(clusters_split)
    assert cluster_shop.config.trend_weight <= 0.2  # co-purchase: mostly EASE
    # the choice is the validation number the model reports
    valid = evaluate(cluster_shop, clusters_split.train, clusters_split.valid, k=10, now=clusters_split.valid_now)
    best = max(cluster_shop.fit_info["blend_valid_ndcg@10"].values())
    assert valid["ndcg@10"] == pytest.approx(best, abs=1e-4)


def test_the_trend_part_is_scored_as_of_each_basket(drifting_split):
    """With the whole weight on trending the blend ranks exactly as trending does, as of each
    customer's basket when a moment is set, at the end of the histories otherwise."""
    split = drifting_split
    blend = _fit(split, trend_weight=1.0, half_life_days=7.0)
    trend = make_recommender("trending", {"half_life_days": 7.0}).fit(split.train)
    users = np.unique(split.valid[:, 0])[:50]
    for now in (split.valid_now, None):
        blend.set_now(now)
        trend.set_now(now)
        np.testing.assert_array_equal(blend.recommend(users, k=10)[0], trend.recommend(users, k=10)[0])
    as_of = evaluate(blend, split.train, split.valid, k=10, now=split.valid_now)["ndcg@10"]
    assert as_of == pytest.approx(evaluate(trend, split.train, split.valid, k=10, now=split.valid_now)["ndcg@10"])
    # at the end of the data the validation would count sales made after the basket: another number
    assert as_of != pytest.approx(evaluate(blend, split.train, split.valid, k=10)["ndcg@10"], abs=1e-3)


def test_save_load_round_trip_scores_and_excludes_bought_items(drifting_split, tmp_path):
    split = drifting_split
    model = _fit(split)
    model.set_histories(split.train_valid)
    loaded = load_recommender(model.save(tmp_path / "blend"))
    assert loaded.algorithm == "ease_trending"
    assert (loaded.config.trend_weight, loaded.config.half_life_days) == (model.config.trend_weight,
                                                                         model.config.half_life_days)
    users = np.arange(40)
    np.testing.assert_allclose(loaded.score(users), model.score(users), rtol=1e-5, atol=1e-5)
    items, _ = loaded.recommend(users, k=10)
    seen = split.train_valid.csr(binary=True)
    for row, user in enumerate(users):
        assert not set(items[row]) & set(seen[user].indices)
    # a customer unknown at fit time with the same history scores as the indexed one
    history = [int(i) for i in seen[5].indices]
    np.testing.assert_allclose(loaded.score_histories([history])[0], loaded.score(np.array([5]))[0],
                               rtol=1e-4, atol=1e-4)
    # after load, fresh histories bring back scoring as of a moment
    loaded.set_histories(split.train)
    loaded.set_now(split.valid_now)
    model.set_histories(split.train)
    model.set_now(split.valid_now)
    np.testing.assert_allclose(loaded.score(users), model.score(users), rtol=1e-5, atol=1e-5)


def test_auto_serves_the_blend_only_beyond_noise(drifting_split, clusters_split):
    ds_trend = drifting_split.train_valid
    # the drifting shop: the blend beats both references by far, auto serves it and the refit on
    # every event keeps the weight and half-life chosen on validation
    model, metrics = fit_recommender("auto", ds_trend, params={"candidates": {
        "popularity": {}, "ease": {"l2": 10.0}, "ease_trending": {"l2": 10.0}}})
    verdicts = {row["algorithm"]: row["verdict"] for row in metrics["selection"]}
    assert metrics["algorithm"] == "ease_trending" and verdicts["ease_trending"].startswith("beats")
    assert model.algorithm == "ease_trending"
    assert model.config.trend_weight == metrics["params"]["trend_weight"]
    assert model.config.half_life_days == metrics["params"]["half_life_days"]
    # the clusters: the blend is EASE's order give or take noise, so the reference stays
    _, metrics = fit_recommender("auto", clusters_split.train_valid, params={"candidates": {
        "popularity": {}, "ease": {"l2": 10.0}, "ease_trending": {"l2": 10.0}}})
    verdicts = {row["algorithm"]: row["verdict"] for row in metrics["selection"]}
    assert metrics["algorithm"] == "ease"
    assert verdicts["ease_trending"].startswith("not better than ease beyond noise")

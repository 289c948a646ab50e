"""Time-consistent popularity, the trending candidate, and calibration of a capped EASE.

The drifting shop: promotions move the best sellers every week. A list computed at the end of the
data is measured on each customer's next order after it (what serving does); the validation must
rank the candidates the same way."""

import numpy as np
import pytest

from recommendations.engine.data import Dataset, build_dataset, leave_last_out_split
from recommendations.engine.metrics import evaluate
from recommendations.engine.models import calibrate, make_recommender
from recommendations.engine.models.popularity import HALF_LIFE_GRID_DAYS
from recommendations.engine.synthetic import drifting_shop, drifting_shop_end, retail_orders
from recommendations.engine.train import fit_recommender

DAYS = 120
DAY = 86400.0


@pytest.fixture(scope="module")
def drifting():
    """(dataset up to the end, the served truth: each customer's next order's new items)."""
    shop = drifting_shop(after_days=7, days=DAYS, seed=0)
    end = drifting_shop_end(DAYS)
    ds, _ = build_dataset([e for e in shop.events if e[3] < end], item_keys=shop.item_keys)
    users = {k: n for n, k in enumerate(ds.user_keys)}
    items = {k: n for n, k in enumerate(ds.item_keys)}
    seen = set(zip(ds.user_idx.tolist(), ds.item_idx.tolist()))
    truth = {(users[u], items[i]) for u, i, _, ts, *_ in shop.events if ts >= end and u in users}
    return ds, np.array(sorted(truth - seen), dtype=np.int64)


def _served(algorithm: str, params: dict, ds: Dataset, truth: np.ndarray) -> float:
    """NDCG@10 of the list computed from every event (as of the end), on the next orders."""
    model = make_recommender(algorithm, params).fit(ds)
    return evaluate(model, ds, truth, k=10)["ndcg@10"]


def test_popularity_as_of_a_moment_counts_only_earlier_events_with_decay():
    # item 0 bought on days 0 and 2, item 1 on day 10, item 2 on day 20
    ds = Dataset([0, 1, 0, 1], [0, 0, 1, 2], np.array([0.0, 2.0, 10.0, 20.0]) * DAY, np.ones(4), ["a", "b"],
                 ["x", "y", "z"])
    pop = make_recommender("popularity", {"use_weights": False}).fit(ds)
    np.testing.assert_allclose(pop.score(np.array([0]))[0], [2, 1, 1])  # no moment: every event
    pop.set_now(np.array([10.0 * DAY, np.nan]))
    scores = pop.score(np.array([0, 1]))
    np.testing.assert_allclose(scores[0], [2, 0, 0])  # strictly before day 10
    np.testing.assert_allclose(scores[1], [2, 1, 1])  # nan: the end of the histories
    trend = make_recommender("trending", {"half_life_days": 2.0, "use_weights": False}).fit(ds)
    trend.set_now(np.array([12.0 * DAY, 4.0 * DAY]))
    np.testing.assert_allclose(trend.score(np.array([0, 1])),
                               [[0.5**6 + 0.5**5, 0.5, 0], [0.5**2 + 0.5, 0, 0]], rtol=1e-6)
    trend.set_now(None)  # serving: decayed from the last event (day 20)
    np.testing.assert_allclose(trend.score(np.array([0]))[0], [0.5**10 + 0.5**9, 0.5**5, 1], rtol=1e-6)


def test_trending_chooses_its_half_life_on_validation_as_of_each_basket(drifting):
    ds, _ = drifting
    split = leave_last_out_split(ds)
    model = make_recommender("trending").fit(split.train, valid=split.valid, valid_now=split.valid_now)
    measured = model.fit_info["half_life_valid_ndcg@10"]
    assert set(measured) == {str(h) for h in HALF_LIFE_GRID_DAYS}
    assert model.config.half_life_days == max(HALF_LIFE_GRID_DAYS, key=lambda h: measured[str(h)])
    # without validation times there is nothing to choose on: a fixed fallback, still a valid model
    assert make_recommender("trending").fit(split.train).config.half_life_days is not None


def test_auto_picks_trending_in_a_drifting_shop_and_validation_predicts_the_served_order(drifting):
    ds, truth = drifting
    model, metrics = fit_recommender("auto", ds, params={"candidates": {"popularity": {}, "trending": {},
                                                                       "ease": {"l2": 50.0}}})
    assert metrics["algorithm"] == "trending"
    valid = {row["algorithm"]: row["valid_ndcg"] for row in metrics["selection"]}
    half_life = metrics["params"]["half_life_days"]
    assert model.config.half_life_days == half_life  # the refit on every event keeps the chosen one
    served = {"popularity": _served("popularity", {}, ds, truth),
              "trending": _served("trending", {"half_life_days": half_life}, ds, truth),
              "ease": _served("ease", {"l2": 50.0}, ds, truth)}
    # the order validation saw is the order of the served lists: trending first, far ahead
    assert sorted(valid, key=valid.get)[-1] == max(served, key=served.get) == "trending"
    assert served["trending"] > 1.5 * max(served["popularity"], served["ease"])
    # the exported list is the trending one
    items, _ = model.recommend(np.arange(ds.n_users), k=10)
    reference = make_recommender("trending", {"half_life_days": half_life}).fit(ds)
    np.testing.assert_array_equal(items, reference.recommend(np.arange(ds.n_users), k=10)[0])


def test_popularity_is_validated_as_of_the_basket_not_with_later_sales(drifting):
    """Scored at the end of the data, a validation basket's popularity would include what was bought
    after it: the time-consistent number is what the selection reports."""
    ds, _ = drifting
    split = leave_last_out_split(ds)
    model, metrics = fit_recommender("popularity", ds)
    pop = make_recommender("popularity").fit(split.train)
    as_of = evaluate(pop, split.train, split.valid, k=10, now=split.valid_now)["ndcg@10"]
    at_end = evaluate(pop, split.train, split.valid, k=10)["ndcg@10"]
    assert metrics["valid_ndcg@10"] == pytest.approx(as_of)
    assert as_of != pytest.approx(at_end)


def test_capped_ease_calibrates_with_a_positive_slope():
    """Items outside EASE's cap score ~-1e6: sampled as negatives, they used to flatten the Platt
    slope to ~0 (every probability the same). Calibration now leaves them out."""
    shop = retail_orders(n_customers=300, seed=0)
    split = leave_last_out_split(build_dataset(shop.events)[0])
    model = make_recommender("ease", {"max_items": 40, "l2": 10.0}).fit(split.train)
    assert (model.score(np.arange(3)) < -1e5).any()  # the cap leaves a tail
    a, _ = calibrate(model, split.valid)
    assert a > 0.01
    scores = model.score(np.arange(20))
    probs = model.probability(scores)
    top = np.argmax(scores, axis=1)
    tail = np.argmin(scores, axis=1)
    assert (probs[np.arange(20), top] > 10 * probs[np.arange(20), tail]).all()

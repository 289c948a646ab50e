"""The served list's expected quality: validation weighted to the date mix of the customers' latest
orders (engine.train.served_list_estimate and the metrics it is built from)."""

import numpy as np
import pytest

from recommendations.engine.data import Split, build_dataset
from recommendations.engine.metrics import date_mix_weights, effective_groups, standard_error, weighted_mean_se
from recommendations.engine.train import fit_recommender, served_list_estimate

DAY = 86400.0


def test_date_mix_weights_give_the_reference_mix():
    rng = np.random.default_rng(0)
    times = rng.uniform(0, 100, 4000)  # validation dates: spread evenly
    reference = rng.uniform(80, 100, 500)  # latest orders: the last fifth
    w = date_mix_weights(times, reference, bins=20)
    late = times >= 80
    assert w[late].sum() / w.sum() == pytest.approx(1.0, abs=0.02)
    assert w[times < 75].max() == 0.0
    # the same mix: no reweighting
    assert np.allclose(date_mix_weights(times, times), 1.0)


def test_date_mix_weights_put_reference_dates_outside_the_range_in_the_edge_bins():
    times = np.arange(100, dtype=float)
    w = date_mix_weights(times, np.array([500.0, 600.0]), bins=10)  # every latest order after every target
    assert w[times >= 90].sum() == pytest.approx(w.sum()) and w[times < 90].max() == 0.0


@pytest.mark.parametrize("times,reference", [(np.array([]), np.array([1.0])), (np.ones(5), np.array([np.nan]))])
def test_date_mix_weights_without_anything_to_weigh_are_ones(times, reference):
    assert np.array_equal(date_mix_weights(times, reference), np.ones(len(times)))


def test_weighted_mean_se_with_equal_weights_is_the_clustered_mean_and_se():
    rng = np.random.default_rng(1)
    x, groups = rng.random(300), rng.integers(0, 40, 300)
    mean, se = weighted_mean_se(x, np.full(300, 2.5), groups)
    assert mean == pytest.approx(x.mean()) and se == pytest.approx(standard_error(x, groups))
    assert effective_groups(np.ones(300), groups) == pytest.approx(len(np.unique(groups)))
    # one customer holding all the weight: one effective customer
    w = (groups == groups[0]).astype(float)
    assert effective_groups(w, groups) == pytest.approx(1.0)


def _split(valid_times: np.ndarray, test_times: np.ndarray) -> Split:
    """A split whose customer u has one validation target at valid_times[u] and a test order at test_times[u]."""
    n = len(valid_times)
    targets = np.stack([np.arange(n), np.zeros(n, np.int64)], axis=1)
    ds, _ = build_dataset([(str(u), "i", "purchase", float(u), None) for u in range(n)])
    return Split(train=ds, valid=targets, test=targets.copy(), train_valid=ds,
                 valid_now=np.asarray(valid_times, float), test_now=np.asarray(test_times, float))


def test_served_list_estimate_is_the_level_at_the_latest_orders_dates():
    rng = np.random.default_rng(2)
    n = 3000
    valid_times = rng.uniform(0, 120, n) * DAY  # validation orders over four months
    test_times = rng.uniform(96, 120, n) * DAY  # latest orders: the last four bins (of 20)
    gains = np.where(valid_times > 96 * DAY, 0.05, 0.01)  # late orders are the easy ones
    out = served_list_estimate(gains, _split(valid_times, test_times))
    assert gains.mean() < 0.02  # the plain mean: the wrong weeks
    assert out["expected_ndcg@10"] == pytest.approx(0.05, abs=0.003)
    assert out["expected_ndcg@10_se"] >= 0 and 0 < out["expected_customers"] < n


def test_served_list_estimate_needs_validation_and_test_orders():
    split = _split(np.array([1.0]), np.array([2.0]))
    split.test = np.zeros((0, 2), np.int64)
    assert served_list_estimate(np.array([0.1]), split) == {}


def test_fit_recommender_reports_the_expected_quality_next_to_the_test(clusters):
    ds, _ = build_dataset(clusters.events, item_keys=clusters.item_keys)
    _, metrics = fit_recommender("ease", ds, params={"l2": 10.0})
    discover = metrics["tasks"]["discover"]
    assert {"expected_ndcg@10", "expected_ndcg@10_se", "expected_customers"} <= set(discover)
    # weighted validation: within the spread of the validation gains, on fewer effective customers
    assert 0 < discover["expected_ndcg@10"] <= 1
    assert 0 < discover["expected_customers"] <= len(np.unique(ds.user_idx))
    assert metrics["expected_ndcg@10"] == discover["expected_ndcg@10"]
    assert discover["valid_ndcg@10"] == metrics["valid_ndcg@10"]  # the number the choice was made on


def test_the_expected_quality_is_that_of_the_list_served_with_its_cold_slots():
    # given: popularity on the variant shop, where validation gives the cold items slots
    from recommendations.engine.data import leave_last_out_split
    from recommendations.engine.train import served_list_expected, train_and_evaluate

    from .test_cold_items import variant_shop

    events, keys, _, emb = variant_shop()
    ds, _ = build_dataset(events, item_keys=keys)
    split = leave_last_out_split(ds)
    # when
    model, metrics, _ = train_and_evaluate("popularity", {}, split, item_embeddings=emb)
    # then: the estimate is of the staged list, not of popularity alone
    assert metrics["cold_slots"]["chosen"]["slots"] > 0
    model.set_histories(split.train)
    served = served_list_expected(model, split)
    model.set_cold_stage(None)
    alone = served_list_expected(model, split)
    assert metrics["expected_ndcg@10"] == pytest.approx(served["expected_ndcg@10"])
    assert served["expected_ndcg@10"] != pytest.approx(alone["expected_ndcg@10"])

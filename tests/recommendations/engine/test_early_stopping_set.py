"""The sequential model chooses its epoch on a set of its own, so the caller's validation targets
measure a model that chose nothing on them (selection and the expected quality stay honest)."""

import numpy as np
import pytest

from recommendations.engine.data import build_dataset, last_basket_holdout
from recommendations.engine.models import make_recommender

from .conftest import FAST_SEQUENTIAL


def _shop():
    # customer a: three orders (x) (x, y) (y, z); b: two orders (x) (w); c: one order (y)
    rows = [("a", "x", 1.0), ("a", "x", 2.0), ("a", "y", 2.0), ("a", "y", 3.0), ("a", "z", 3.0),
            ("b", "x", 1.0), ("b", "w", 5.0), ("c", "y", 1.0)]
    ds, _ = build_dataset([(u, i, "purchase", t, None) for u, i, t in rows])
    return ds


def test_holdout_takes_each_chosen_customers_last_order_whole():
    ds = _shop()
    kept, targets = last_basket_holdout(ds, max_users=10, rng=np.random.default_rng(0))
    users, items = ds.user_keys, ds.item_keys
    pairs = {(users[u], items[i]) for u, i in targets.tolist()}
    assert pairs == {("a", "z"), ("b", "w")}  # a's y was bought before: not a discover target
    assert kept.n_events == ds.n_events - 3  # a's (y, z) and b's (w) left the fit; c keeps its only order
    assert set(kept.ts[kept.user_idx == users.index("a")]) == {1.0, 2.0}


def test_holdout_respects_max_users():
    ds = _shop()
    kept, targets = last_basket_holdout(ds, max_users=1, rng=np.random.default_rng(0))
    assert len(np.unique(targets[:, 0])) == 1 and ds.n_events - kept.n_events in (1, 2)


def test_own_stopping_never_looks_at_the_callers_validation_targets(clusters_split, cluster_onehot):
    split = clusters_split
    params = {**FAST_SEQUENTIAL, "max_epochs": 6, "patience": 2}
    real = make_recommender("sequential", params).fit(split.train, item_embeddings=cluster_onehot, valid=split.valid)
    shuffled = split.valid.copy()
    shuffled[:, 1] = np.random.default_rng(1).permutation(shuffled[:, 1])  # other targets, same customers
    other = make_recommender("sequential", params).fit(split.train, item_embeddings=cluster_onehot, valid=shuffled)
    users = np.arange(split.train.n_users)
    assert real.fit_info["best_epoch"] == other.fit_info["best_epoch"]
    assert np.array_equal(real.score(users), other.score(users))
    assert real.fit_info["best_valid_ndcg"] > 0  # it did stop on something: its own held-out orders


def test_after_fitting_it_scores_from_every_training_order(clusters_split, cluster_onehot):
    split = clusters_split
    model = make_recommender("sequential", {**FAST_SEQUENTIAL, "max_epochs": 3}).fit(
        split.train, item_embeddings=cluster_onehot, valid=split.valid)
    users = np.arange(split.train.n_users)
    before = model.score(users)
    model.set_histories(split.train)
    assert np.allclose(before, model.score(users))


def test_stop_on_is_checked():
    with pytest.raises(ValueError, match="stop_on must be"):
        make_recommender("sequential", {"stop_on": "test"})

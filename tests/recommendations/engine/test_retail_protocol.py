"""Orders as the unit: the within-order leak of line-level leave-last-out is reproduced on
synthetic retail orders, and the basket protocol is immune to it."""

import numpy as np
import pytest

from recommendations.engine.data import build_dataset, leave_last_out_split, time_window_split
from recommendations.engine.metrics import evaluate
from recommendations.engine.models import BuyAgain, make_recommender
from recommendations.engine.synthetic import retail_orders
from recommendations.engine.tasks import LIST_BUY_AGAIN
from recommendations.engine.train import Candidate, selection_rule

SEQ = {"dim": 32, "max_epochs": 6, "min_epochs": 6, "use_text": False, "seed": 0}


@pytest.fixture(scope="module")
def shop():
    return retail_orders(n_customers=200, seed=0)


@pytest.fixture(scope="module")
def shop_ds(shop):
    return build_dataset(shop.events)[0]


def _shuffled_within_orders(events, seed):
    """The same orders with their lines in another order (and the file order scrambled)."""
    rng = np.random.default_rng(seed)
    return [events[i] for i in rng.permutation(len(events))]


def test_orders_are_written_like_real_exports(shop, shop_ds):
    """Several lines per order, one timestamp and order id per order, product-code order."""
    by_order = {}
    for user, item, _, ts, _, order in shop.events:
        by_order.setdefault(order, []).append((user, item, ts))
    sizes = np.array([len(v) for v in by_order.values()])
    assert sizes.mean() > 2.5
    assert all(len({(u, t) for u, _, t in lines}) == 1 for lines in by_order.values())
    assert all([i for _, i, _ in lines] == sorted(i for _, i, _ in lines) for lines in by_order.values())
    assert len(np.unique(shop_ds.basket)) == len(by_order)


def test_basket_split_holds_out_whole_orders_and_splits_new_from_repeat(shop_ds):
    split = leave_last_out_split(shop_ds)
    test_users = np.unique(np.r_[split.test[:, 0], split.test_repeat[:, 0]])
    seen = split.train_valid.csr(binary=True)
    # no item of the held-out order is in its own input unless bought in an EARLIER order
    assert not np.asarray(seen[split.test[:, 0], split.test[:, 1]]).any()
    assert np.asarray(seen[split.test_repeat[:, 0], split.test_repeat[:, 1]]).all()
    # the whole last order is held out: for every test user, nothing at or after its time is in input
    for u in test_users[:50]:
        assert split.train_valid.ts[split.train_valid.user_idx == u].max() < split.test_now[u]
    assert len(split.test_repeat) > len(split.test) > 0  # replenishment: most lines are repeats


def test_order_id_or_same_timestamp_makes_a_basket():
    events = [("a", "x", "purchase", 10.0, None, "o1"), ("a", "y", "purchase", 11.0, None, "o1"),
              ("a", "z", "purchase", 20.0, None), ("a", "x", "purchase", 20.0, None),
              ("b", "x", "purchase", 10.0, None, "o1")]  # same order id, other customer: other basket
    ds, _ = build_dataset(events)
    b = dict(zip(zip(ds.user_idx.tolist(), ds.ts.tolist()), ds.basket.tolist(), strict=True))
    assert b[(0, 10.0)] == b[(0, 11.0)] != b[(0, 20.0)]
    assert b[(1, 10.0)] not in {b[(0, 10.0)], b[(0, 20.0)]}
    assert len(np.unique(ds.basket)) == 3


def test_old_line_protocol_inflates_validation_and_the_basket_protocol_does_not(shop_ds):
    """The leak of issue 9: holding out the last LINE leaves its order-mates (and their
    neighbouring product codes) in the input; a line-level sequential model learns 'the next
    line of this order' and its validation number says far more than it can deliver."""
    old = leave_last_out_split(shop_ds, unit="line")
    seen = old.train.csr(binary=True)
    old_targets = old.valid[np.asarray(seen[old.valid[:, 0], old.valid[:, 1]]).ravel() == 0]
    new = leave_last_out_split(shop_ds)
    params = {**SEQ, "baskets": False}
    on_old = make_recommender("sequential", params).fit(old.train, valid=old_targets)
    on_new = make_recommender("sequential", params).fit(new.train, valid=new.valid)
    old_ndcg = evaluate(on_old, old.train, old_targets)["ndcg@10"]
    new_ndcg = evaluate(on_new, new.train, new.valid)["ndcg@10"]
    assert old_ndcg > 1.5 * new_ndcg


def test_shuffling_lines_inside_orders_changes_no_metric(shop):
    """Basket protocol: the order of an export's lines is irrelevant, for every model and both
    lists; the old line protocol's targets change with it."""
    a, _ = build_dataset(shop.events)
    b, _ = build_dataset(_shuffled_within_orders(shop.events, seed=3))
    results = []
    for ds in (a, b):
        split = leave_last_out_split(ds)
        row = {}
        for alg, params in (("popularity", {}), ("ease", {}), ("sequential", {**SEQ, "max_epochs": 2})):
            model = make_recommender(alg, params).fit(split.train, valid=split.valid)
            model.set_histories(split.train_valid)
            row[alg] = evaluate(model, split.train_valid, split.test)["ndcg@10"]
        ranker = BuyAgain().fit(split.train)
        ranker.set_histories(split.train_valid)
        ranker.set_now(split.test_now)
        row["buy_again"] = evaluate(ranker, split.train_valid, split.test_repeat, task=LIST_BUY_AGAIN)["ndcg@10"]
        results.append(row)
    assert results[0] == pytest.approx(results[1], abs=1e-6)
    old_a = leave_last_out_split(a, unit="line").test
    old_b = leave_last_out_split(b, unit="line").test
    assert not np.array_equal(old_a, old_b)


def test_buy_again_beats_most_frequent_and_most_recent_on_replenishment(shop_ds):
    split = leave_last_out_split(shop_ds)
    scores = {}
    for mode in ("learned", "frequency", "recency"):
        model = BuyAgain(mode=mode).fit(split.train)
        model.set_histories(split.train_valid)
        model.set_now(split.test_now)
        scores[mode] = evaluate(model, split.train_valid, split.test_repeat, task=LIST_BUY_AGAIN)
    assert scores["learned"]["ndcg@10"] > scores["frequency"]["ndcg@10"] + 2 * scores["learned"]["ndcg@10_se"]
    assert scores["learned"]["ndcg@10"] > scores["recency"]["ndcg@10"]
    assert scores["learned"]["n_targets"] == len(split.test_repeat)


def test_buy_again_scores_only_own_items_and_explains_the_interval():
    ds, _ = build_dataset([("a", "milk", "purchase", d * 86400.0, None) for d in (0, 7, 14, 21)]
                          + [("a", "jam", "purchase", 3 * 86400.0, None), ("b", "tea", "purchase", 0.0, None)])
    model = BuyAgain().fit(ds)
    milk, jam, tea = (ds.item_keys.index(k) for k in ("milk", "jam", "tea"))
    history = [(milk, d * 86400.0) for d in (0, 7, 14, 21)] + [(jam, 3 * 86400.0)]
    s = model.score_timed_histories([history], now=28 * 86400.0)
    assert np.isneginf(s[0, tea]) and np.isfinite(s[0, [milk, jam]]).all()
    why = model.explain(history, milk, now=28 * 86400.0)
    assert why == {"kind": "buy_again", "times_bought": 4, "days_since_last": 7.0, "interval_days": 7.0}
    assert model.explain(history, jam, now=28 * 86400.0)["interval_days"] is None


def test_time_window_split_is_basket_aware(shop_ds):
    end = shop_ds.ts.max()
    split = time_window_split(shop_ds, end - 30 * 86400, 30 * 86400)
    assert len(split.test) and len(split.test_repeat)
    assert split.train_valid.ts.max() < end - 30 * 86400
    seen = split.train_valid.csr(binary=True)
    assert not np.asarray(seen[split.test[:, 0], split.test[:, 1]]).any()


def _cand(name, gains):
    c = Candidate(name, {})
    c.gains = np.asarray(gains, float)
    c.valid_metrics = {"ndcg@10": float(c.gains.mean())}
    return c


def test_selection_keeps_the_best_baseline_unless_beaten_beyond_noise():
    rng = np.random.default_rng(0)
    users = np.arange(400)
    base = rng.random(400) * 0.5
    pop, ease = _cand("popularity", base * 0.8), _cand("ease", base)
    # a challenger 0.5% better on average but noisy: within noise -> EASE
    noisy = _cand("sequential", base + rng.normal(0.005, 0.2, 400))
    assert selection_rule([pop, ease, noisy], users, references=("popularity", "ease")) is ease
    assert "not better than ease" in noisy.verdict
    # clearly better on most customers -> the challenger
    strong = _cand("sequential", base + 0.05 + rng.normal(0, 0.02, 400))
    assert selection_rule([pop, ease, strong], users, references=("popularity", "ease")) is strong
    assert strong.verdict.startswith("beats ease")

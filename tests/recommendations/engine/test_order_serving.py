"""A model trained on orders is served orders: the batch scorer and ``score_order_histories`` feed
the basket-aware sequential model each customer's latest orders exactly as its validation did
(``Dataset.basket_sequences``), not one line per position."""

import numpy as np
import pytest
import torch

from recommendations.engine.batch_scoring import PackedHistories, SequentialScorer, score_batches
from recommendations.engine.data import build_dataset, group_orders
from recommendations.engine.models import make_recommender
from recommendations.engine.models.sequential import _pad_histories
from recommendations.engine.synthetic import retail_orders

from .conftest import FAST_SEQUENTIAL


def _orders_of(ds):
    """Each customer's lines oldest first with their order keys, as the CRM hands them over (lines
    of one order in any order; here reversed product codes)."""
    order = np.lexsort((-ds.item_idx, ds.ts, ds.user_idx))
    items, keys = [[] for _ in range(ds.n_users)], [[] for _ in range(ds.n_users)]
    for u, i, b in zip(ds.user_idx[order], ds.item_idx[order], ds.basket[order], strict=True):
        items[u].append(int(i))
        keys[u].append(int(b))
    return items, keys


@pytest.fixture(scope="module")
def fitted():
    data = retail_orders(n_customers=120, seed=3)
    ds, _ = build_dataset(data.events, item_keys=data.item_keys)
    model = make_recommender("sequential", {**FAST_SEQUENTIAL, "max_epochs": 3, "max_len": 6}).fit(ds)
    return ds, model


def test_group_orders_puts_an_orders_lines_together_at_its_first_line():
    assert group_orders([5, 6, 7, 8, 9], ["a", "b", "a", "c", "c"]) == [[5, 7], [6], [8, 9]]
    with pytest.raises(ValueError, match="3 items but 2 order keys"):
        group_orders([1, 2, 3], ["a", "b"])


def test_packed_orders_keep_their_starts_through_a_slice():
    packed = PackedHistories.from_lists([[1, 2, 3], [], [4, 5]], orders=[["x", "y", "x"], [], [7.0, 7.0]])
    assert packed.indices.tolist() == [1, 3, 2, 4, 5]
    assert packed.starts.tolist() == [True, False, True, True, False]
    assert packed.slice(2, 3).starts.tolist() == [True, False]
    with pytest.raises(ValueError, match="starts has 1 entries but there are 2 indices"):
        PackedHistories(np.array([0, 2]), np.array([1, 2], np.int32), np.array([True]))


def test_last_order_tokens_are_the_evaluations_tokens():
    # given: random histories with repeated items inside orders, orders wider than the token width,
    # more orders than positions, empty rows
    rng = np.random.default_rng(0)
    histories, keys = [], []
    for _ in range(60):
        n_orders = int(rng.integers(0, 9))
        sizes = rng.integers(1, 7, n_orders)
        histories.append([int(i) for s in sizes for i in rng.integers(0, 12, s)])
        keys.append([o for o, s in enumerate(sizes) for _ in range(s)])
    packed = PackedHistories.from_lists(histories, orders=keys)
    # when
    tokens = packed.last_order_tokens(5, 3)
    # then
    orders = [[np.unique(b) for b in group_orders(h, k)] for h, k in zip(histories, keys, strict=True)]
    np.testing.assert_array_equal(tokens, _pad_histories(orders, 5, 3))


def test_the_batch_scorer_serves_the_list_validation_measured(fitted):
    # given
    ds, model = fitted
    users = np.arange(ds.n_users)
    items, keys = _orders_of(ds)
    measured = model.score(users)  # the evaluation path: the dataset's orders
    # when
    with torch.inference_mode():
        served = SequentialScorer(model, device="cpu").block(PackedHistories.from_lists(items, orders=keys)).numpy()
    by_orders = model.score_order_histories(items, keys)
    one_line_each = model.score_histories(items)
    # then
    np.testing.assert_allclose(served, measured, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(by_orders, measured, rtol=1e-4, atol=1e-4)
    assert not np.allclose(one_line_each, measured, atol=1e-2)  # what was served before


def test_scored_batches_of_orders_give_the_evaluations_top_k(fitted):
    ds, model = fitted
    items, keys = _orders_of(ds)
    packed = PackedHistories.from_lists(items, orders=keys)
    batches = list(score_batches(SequentialScorer(model, device="cpu"), packed, 10, exclude=packed, batch_size=32))
    got = np.concatenate([b.items for b in batches])
    scores = model.score(np.arange(ds.n_users))
    seen = ds.csr(binary=True).tocoo()
    scores[seen.row, seen.col] = -np.inf
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    agree = (np.sort(got, 1) == np.sort(expected, 1)).all(1).mean()
    assert agree > 0.98  # the same top 10 (float32 near-ties aside); one line per position: 0.28

"""Batch scoring gives exactly the top-k of the per-customer path, from packed arrays, in any sharding."""

import numpy as np
import pytest
import torch

from recommendations.engine.batch_scoring import (
    FactorScorer,
    PackedHistories,
    RecommenderScorer,
    SequentialScorer,
    score_batches,
    shard_ranges,
)
from recommendations.engine.models import make_recommender, top_k

from .conftest import FAST_SEQUENTIAL


def _collect(batches, n):
    items = np.full((n, 0), -1)
    out_items, out_scores = {}, {}
    for b in batches:
        for r, it, sc in zip(b.rows, b.items, b.scores):
            out_items[int(r)], out_scores[int(r)] = it, sc
    assert sorted(out_items) == list(range(n)), items
    return np.stack([out_items[r] for r in range(n)]), np.stack([out_scores[r] for r in range(n)])


def _reference(scores: np.ndarray, histories, exclude, allowed, k):
    """Today's path: dense numpy scores, -inf masks, engine.models.top_k."""
    scores = scores.astype(np.float32, copy=True)
    scores[:, ~allowed] = -np.inf
    for r, h in enumerate(exclude):
        scores[r, h] = -np.inf
    return top_k(scores, k)


def test_packing_round_trips_and_pads_the_latest_items_left():
    histories = [[3, 1, 2], [], [5], list(range(10))]
    packed = PackedHistories.from_lists(histories)
    assert packed.indices.dtype == np.int32 and packed.indptr.dtype == np.int64
    assert packed.to_lists() == histories
    tokens = packed.last_tokens(4)
    assert tokens.tolist() == [[0, 4, 2, 3], [0, 0, 0, 0], [0, 0, 0, 6], [7, 8, 9, 10]]
    assert packed.slice(2, 4).to_lists() == histories[2:]
    rows = np.array([0, 0, 2, 3, 3, 3])
    assert PackedHistories.from_events(rows, np.array([1, 2, 3, 4, 5, 6]), 4).to_lists() == [[1, 2], [], [3], [4, 5, 6]]
    with pytest.raises(ValueError):
        PackedHistories.from_events(np.array([1, 0]), np.array([1, 2]), 2)


def test_sequential_batch_scoring_equals_per_customer_top_k(clusters_split):
    # given a trained sequential model, histories with seen items excluded, part of the catalogue unavailable
    model = make_recommender("sequential", {**FAST_SEQUENTIAL, "fixed_epochs": 1, "device": "cpu"}).fit(
        clusters_split.train)
    rng = np.random.default_rng(0)
    histories = [list(map(int, s)) for s in clusters_split.train.sequences()]
    exclude = [sorted(set(h)) for h in histories]
    allowed = rng.random(model.n_items) > 0.1
    k = 10
    # when
    packed, packed_exclude = PackedHistories.from_lists(histories), PackedHistories.from_lists(exclude)
    items, scores = _collect(score_batches(SequentialScorer(model), packed, k, exclude=packed_exclude,
                                           allowed=allowed, batch_size=37), len(histories))
    # then
    ref_items, ref_scores = _reference(model.score_histories(histories), histories, exclude, allowed, k)
    assert np.array_equal(items, ref_items)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-5)


def test_any_recommender_and_any_sharding_give_the_same_results(clusters_split):
    model = make_recommender("ease").fit(clusters_split.train)
    histories = [list(map(int, s)) for s in clusters_split.train.sequences()]
    packed = PackedHistories.from_lists(histories)
    allowed = np.ones(model.n_items, bool)
    one = _collect(score_batches(RecommenderScorer(model), packed, 5, exclude=packed, allowed=allowed), len(packed))
    ref_items, _ = _reference(model.score_histories(histories), histories, histories, allowed, 5)
    assert np.array_equal(one[0], ref_items)
    # shards (as Celery workers would take them) cover every row once, with the same results
    sharded = []
    for lo, hi in shard_ranges(len(packed), 3):
        sharded.extend(score_batches(RecommenderScorer(model), packed, 5, exclude=packed, allowed=allowed,
                                     rows=range(lo, hi), batch_size=16))
    items, scores = _collect(sharded, len(packed))
    assert np.array_equal(items, one[0]) and np.array_equal(scores, one[1])


def test_factor_scorer_is_the_matmul_of_mean_item_vectors():
    rng = np.random.default_rng(1)
    p, b = rng.normal(size=(50, 8)).astype(np.float32), rng.normal(size=50).astype(np.float32)
    histories = [list(rng.choice(50, size=rng.integers(1, 6), replace=False)) for _ in range(40)]
    scorer = FactorScorer(p, b, device="cpu")
    items, scores = _collect(score_batches(scorer, PackedHistories.from_lists(histories), 7, batch_size=9), 40)
    dense = np.stack([p[h].mean(0) for h in histories]) @ p.T + b
    ref_items, ref_scores = top_k(dense, 7)
    assert np.array_equal(items, ref_items)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-4, atol=1e-4)


def test_items_that_are_all_excluded_come_back_as_minus_infinity():
    scorer = FactorScorer(np.eye(4, dtype=np.float32), device="cpu")
    packed = PackedHistories.from_lists([[0], [1, 2]])
    batch = next(score_batches(scorer, packed, 4, exclude=PackedHistories.from_lists([[0, 1, 2], [3]]),
                               allowed=np.array([True, True, True, True])))
    assert batch.items[0, 0] == 3 and np.isneginf(batch.scores[0, 1:]).all()
    assert np.isfinite(batch.scores[1]).sum() == 3
    with pytest.raises(ValueError):
        next(score_batches(scorer, packed, 2, allowed=np.ones(3, bool)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the device check runs it)")
def test_cuda_path_agrees_with_cpu_on_the_top_items():  # pragma: no cover - GPU machines only
    rng = np.random.default_rng(2)
    p = rng.normal(size=(2000, 64)).astype(np.float32)
    packed = PackedHistories.from_lists([list(rng.choice(2000, 5)) for _ in range(500)])
    cpu, _ = _collect(score_batches(FactorScorer(p, device="cpu"), packed, 50), 500)
    gpu, _ = _collect(score_batches(FactorScorer(p, device="cuda"), packed, 50), 500)
    overlap = np.mean([len(set(a) & set(b)) / 50 for a, b in zip(cpu, gpu)])
    assert overlap > 0.9  # bf16 reorders near-ties only


def test_ties_are_broken_by_item_index_even_at_the_cut():
    from recommendations.engine.batch_scoring import top_k_ties_by_index

    scores = torch.tensor([[0.0, 1.0, 0.0, 0.0, 1.0, 0.0], [3.0, 2.0, 2.0, 2.0, 2.0, 1.0]])
    values, items = top_k_ties_by_index(scores, 3)
    assert items.tolist() == [[1, 4, 0], [0, 1, 2]]
    assert values.tolist() == [[1.0, 1.0, 0.0], [3.0, 2.0, 2.0]]

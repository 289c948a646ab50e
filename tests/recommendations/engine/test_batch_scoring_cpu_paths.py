"""The single-threaded CPU fast paths (grouped top-k, cache-sized chunks, sum-bag user vectors)
return exactly what the plain paths return, ties and fully excluded rows included."""

import numpy as np
import pytest
import torch

from recommendations.engine import batch_scoring
from recommendations.engine.batch_scoring import FactorScorer, PackedHistories, score_batches, top_k_ties_by_index


def _reference(scores: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best first, ties by ascending item index: a full stable sort of every row."""
    s = scores.numpy()
    order = np.stack([np.lexsort((np.arange(s.shape[1]), -row))[:k] for row in s])
    return np.take_along_axis(s, order, 1), order


@pytest.mark.parametrize("n,k", [(10_000, 50), (1_000, 50), (817, 50), (5_003, 7), (40_000, 20)])
def test_grouped_top_k_equals_a_full_sort_even_with_ties_and_minus_infinity(n, k):
    rng = np.random.default_rng(n + k)
    # coarse integer scores: every row has many ties, also at the k-th place
    scores = torch.from_numpy(rng.integers(0, 30, size=(64, n)).astype(np.float32))
    scores[0] = -torch.inf  # a row with nothing allowed
    scores[1, : n - 3] = -torch.inf  # fewer allowed items than k
    scores[2] = 1.0  # one big tie
    scores[3] = torch.from_numpy(rng.normal(size=n).astype(np.float32))  # continuous
    values, items = top_k_ties_by_index(scores, k, grouped=True)
    ref_values, ref_items = _reference(scores, k)
    assert np.array_equal(items.numpy(), ref_items)
    assert np.array_equal(values.numpy(), ref_values)
    plain_values, plain_items = top_k_ties_by_index(scores, k, grouped=False)
    assert torch.equal(plain_items, items) and torch.equal(plain_values, values)


def test_candidates_are_the_k_largest_values_of_each_row():
    rng = np.random.default_rng(3)
    scores = torch.from_numpy(rng.normal(size=(32, 20_000)).astype(np.float32))
    values, cols = batch_scoring._top_candidates(scores, 51)
    expected = torch.topk(scores, 51, dim=1).values
    assert torch.equal(values, expected)
    assert torch.equal(scores.gather(1, cols), values)


def test_chunked_single_thread_scoring_equals_one_block(monkeypatch):
    # given a factor scorer over 3,000 items, seen items excluded, part of the catalogue masked
    rng = np.random.default_rng(5)
    p, b = rng.normal(size=(3000, 16)).astype(np.float32), rng.normal(size=3000).astype(np.float32)
    histories = [list(rng.choice(3000, size=rng.integers(0, 12), replace=False)) for _ in range(300)]
    packed = PackedHistories.from_lists(histories)
    allowed = rng.random(3000) > 0.2
    scorer = FactorScorer(p, b, device="cpu")
    threads = torch.get_num_threads()
    try:
        # when scored in one block with several threads (plain top-k) ...
        torch.set_num_threads(2)
        whole = list(score_batches(scorer, packed, 25, exclude=packed, allowed=allowed, batch_size=300))
        # ... and single-threaded in 37-row chunks (grouped top-k)
        torch.set_num_threads(1)
        monkeypatch.setattr(batch_scoring, "CPU_CHUNK_ELEMENTS", 37 * 3000)
        chunked = list(score_batches(scorer, packed, 25, exclude=packed, allowed=allowed, batch_size=300))
    finally:
        torch.set_num_threads(threads)
    # then the same items and scores come back
    assert len(whole) == len(chunked) == 1
    assert np.array_equal(whole[0].items, chunked[0].items)
    assert np.array_equal(whole[0].scores, chunked[0].scores)
    for row, history in enumerate(histories):
        assert not set(chunked[0].items[row][np.isfinite(chunked[0].scores[row])]) & set(history)
        assert allowed[chunked[0].items[row][np.isfinite(chunked[0].scores[row])]].all()


def test_user_vector_of_an_empty_history_is_zero_and_others_are_means():
    p = np.arange(12, dtype=np.float32).reshape(6, 2)
    scorer = FactorScorer(p, device="cpu")
    q = scorer.user_vectors(PackedHistories.from_lists([[], [0, 2], [5]])).numpy()
    assert np.allclose(q, [[0, 0], p[[0, 2]].mean(0), p[5]])

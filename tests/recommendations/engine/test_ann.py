"""Approximate candidates (FAISS) for very large catalogues: exact stays the default below the
threshold; the faiss path finds >= 90 % of the exact top-50 and still honours every mask."""

import numpy as np
import pytest

from recommendations.engine import ann
from recommendations.engine.batch_scoring import (
    FactorScorer,
    PackedHistories,
    SequentialScorer,
    score_batches,
    scorer_for,
)
from recommendations.engine.models import make_recommender

from .conftest import FAST_SEQUENTIAL


def _clustered_catalogue(n_items=20_000, dim=16, n_customers=300, seed=0):
    """Items around 200 cluster centres; each customer's history comes from one or two clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(200, dim)).astype(np.float32)
    cluster = rng.integers(0, 200, n_items)
    p = ((centres[cluster] + rng.normal(0, 0.7, (n_items, dim))) / np.sqrt(dim)).astype(np.float32)
    b = rng.normal(0, 0.1, n_items).astype(np.float32)
    histories = []
    for _ in range(n_customers):
        pool = np.flatnonzero(np.isin(cluster, rng.choice(200, rng.integers(1, 3))))
        histories.append(list(rng.choice(pool, 15, replace=False)))
    return p, b, histories


def test_resolve_ann_keeps_exact_below_the_threshold_and_rejects_unknown_modes(monkeypatch):
    assert ann.resolve_ann("auto", ann.ANN_MIN_ITEMS - 1) == "exact"
    assert ann.resolve_ann("exact", 10 * ann.ANN_MIN_ITEMS) == "exact"
    with pytest.raises(ValueError, match="ANN must be one of"):
        ann.resolve_ann("hnsw", 10)
    monkeypatch.setattr(ann, "faiss_available", lambda: False)
    assert ann.resolve_ann("auto", 10 * ann.ANN_MIN_ITEMS) == "exact"  # not installed: exact, no error
    with pytest.raises(ImportError, match="faiss-cpu"):
        ann.resolve_ann("faiss", 10)


def test_the_sequential_scorer_stays_exact_by_default_on_a_small_catalogue(clusters_split):
    model = make_recommender("sequential", {**FAST_SEQUENTIAL, "fixed_epochs": 1, "device": "cpu"}).fit(
        clusters_split.train)
    assert type(scorer_for(model, ann="auto")) is SequentialScorer
    assert type(scorer_for(model, ann="exact")) is SequentialScorer


def test_faiss_candidates_reach_recall_at_50_of_0_9_and_honour_the_masks():
    pytest.importorskip("faiss")
    # given a clustered 20,000-item catalogue, seen items excluded, a tenth of it unavailable
    p, b, histories = _clustered_catalogue()
    packed = PackedHistories.from_lists(histories)
    allowed = np.random.default_rng(1).random(len(p)) > 0.1
    exact_scorer = FactorScorer(p, b, device="cpu")
    index = ann.ItemIndex(ann.item_rows(exact_scorer), nlist=256, nprobe=32)
    # when scored exactly and through the index
    exact = next(score_batches(exact_scorer, packed, 50, exclude=packed, allowed=allowed, batch_size=1000))
    approx = next(score_batches(ann.AnnScorer(exact_scorer, index), packed, 50, exclude=packed, allowed=allowed,
                                batch_size=1000))
    # then most of the exact top-50 is found, and every returned item is allowed, unseen and unique
    recall = np.mean([len(set(a) & set(e)) / 50 for a, e in zip(approx.items, exact.items)])
    assert recall >= 0.9, recall
    assert np.isfinite(approx.scores).all()
    for row, history in enumerate(histories):
        items = approx.items[row]
        assert len(set(items)) == 50 and allowed[items].all() and not set(items) & set(history)
    # and the scores are the exact ones (re-ranked), best first
    dense = exact_scorer.block(packed).numpy()
    np.testing.assert_allclose(approx.scores, np.take_along_axis(dense, approx.items.astype(np.int64), 1),
                               rtol=1e-5, atol=1e-5)
    assert (np.diff(approx.scores, axis=1) <= 0).all()


def test_forced_faiss_wraps_the_sequential_model_and_keeps_its_exact_scores(clusters_split):
    pytest.importorskip("faiss")
    model = make_recommender("sequential", {**FAST_SEQUENTIAL, "fixed_epochs": 1, "device": "cpu"}).fit(
        clusters_split.train)
    scorer = scorer_for(model, ann="faiss")
    assert isinstance(scorer, ann.AnnScorer)
    assert scorer_for(model, ann="faiss").index is scorer.index  # built once per loaded model
    histories = [list(map(int, s)) for s in clusters_split.train.sequences()][:50]
    packed = PackedHistories.from_lists(histories)
    batch = next(score_batches(scorer, packed, 5, exclude=packed))
    dense = SequentialScorer(model).block(packed).detach().numpy()
    finite = np.isfinite(batch.scores)
    np.testing.assert_allclose(batch.scores[finite],
                               np.take_along_axis(dense, batch.items.astype(np.int64), 1)[finite],
                               rtol=1e-4, atol=1e-4)
    for row, history in enumerate(histories):
        assert not set(batch.items[row][finite[row]]) & set(history)

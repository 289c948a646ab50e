import math

import numpy as np
import pytest

from recommendations.engine.data import Dataset
from recommendations.engine.metrics import evaluate, hit_rate, mrr, ndcg, target_ranks
from recommendations.engine.models.base import Recommender


def test_rank_metrics_match_hand_computed_values():
    """Ranks 0, 2, 15 (0-based): HR@10 = 2/3, NDCG@10 = (1 + 1/log2(4) + 0)/3, MRR = (1 + 1/3 + 1/16)/3."""
    ranks = np.array([0, 2, 15])
    assert hit_rate(ranks, 10) == pytest.approx(2 / 3)
    assert ndcg(ranks, 10) == pytest.approx((1 + 1 / math.log2(4)) / 3)
    assert mrr(ranks) == pytest.approx((1 + 1 / 3 + 1 / 16) / 3)
    assert hit_rate(np.array([]), 10) == 0.0


def test_target_ranks_are_pessimistic_on_ties():
    scores = np.array([[0.9, 0.5, 0.5, 0.1], [1.0, 1.0, 1.0, 1.0]], np.float32)
    assert target_ranks(scores, np.array([1, 0])).tolist() == [2, 3]


class FixedScores(Recommender):
    algorithm = "fixed"

    def __init__(self, table: np.ndarray) -> None:
        self.table = table

    def _fit(self, *a, **k):  # pragma: no cover - not used
        pass

    def score(self, user_idx):
        return self.table[user_idx]


def test_evaluate_full_ranking_masks_seen_and_slices_cold():
    """User 0 saw item 0 (masked), so target item 1 ranks first; user 1 saw items 0 and 1,
    so cold target item 3 (no training events) ranks 2nd behind item 2 -> HR@1 = 1/2,
    cold HR@1 = 0, and the top-1 lists cover items 1 and 2 = 2/4 of the catalogue."""
    # given
    train = Dataset([0, 1, 1], [0, 0, 1], [1.0, 1.0, 2.0], [1, 1, 1], ["a", "b"], ["i0", "i1", "i2", "i3"])
    table = np.array([[9.0, 5.0, 1.0, 0.0], [9.0, 8.0, 7.0, 3.0]], np.float32)
    targets = np.array([[0, 1], [1, 3]])
    # when
    m = evaluate(FixedScores(table), train, targets, k=1, cold_threshold=1)
    # then
    assert m["hr@1"] == pytest.approx(0.5)
    assert m["mrr"] == pytest.approx((1 + 1 / 2) / 2)
    assert m["n_cold_targets"] == 1
    assert m["cold_hr@1"] == 0.0
    assert m["coverage@1"] == pytest.approx(2 / 4)

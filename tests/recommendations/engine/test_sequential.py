"""The flagship learns order, uses text for cold items, and runs on the resolved device."""

import numpy as np
import pytest

from recommendations.engine.data import build_dataset, leave_last_out_split
from recommendations.engine.device import resolve_device
from recommendations.engine.metrics import evaluate
from recommendations.engine.models import make_recommender
from recommendations.engine.synthetic import planted_clusters
from recommendations.engine.text import embed_with_cache

from .conftest import FAST_SEQUENTIAL


def test_learns_a_planted_sequence_far_better_than_popularity():
    """One chain of 40 items walked in order (i -> i+1) from random starts: co-occurrence
    of the whole history says little, the last item says everything."""
    # given
    syn = planted_clusters(n_users=250, n_clusters=1, items_per_cluster=40, min_len=6,
                           max_len=12, noise=0.0, seed=1)
    ds, _ = build_dataset(syn.events)
    split = leave_last_out_split(ds)
    # when
    seq = make_recommender("sequential", {**FAST_SEQUENTIAL, "use_text": False}).fit(
        split.train, valid=split.valid)
    pop = make_recommender("popularity").fit(split.train)
    for m in (seq, pop):
        m.set_histories(split.train_valid)
    # then
    seq_m = evaluate(seq, split.train_valid, split.test, k=10)
    pop_m = evaluate(pop, split.train_valid, split.test, k=10)
    assert seq_m["hr@10"] >= 0.8
    assert seq_m["ndcg@10"] >= 3 * pop_m["ndcg@10"]
    assert evaluate(seq, split.train_valid, split.test, k=1)["hr@1"] >= 0.5


def test_cold_items_are_scored_from_text(clusters, clusters_split, text_encoder):
    """Items with no events at all are ranked by text: for most customers, the best cold
    item is one of their own cluster's (the text says 'hiking', 'coffee', ...)."""
    # given
    emb, _ = embed_with_cache(text_encoder, clusters.item_texts, None)
    ds = clusters_split.train_valid
    cold = np.array([clusters.item_keys.index(k) for k in clusters.cold_items])
    assert (ds.item_counts()[cold] == 0).all()
    # when
    model = make_recommender("sequential", FAST_SEQUENTIAL).fit(
        clusters_split.train, item_embeddings=emb, valid=clusters_split.valid)
    model.set_histories(ds)
    scores = model.score(np.arange(ds.n_users))
    # then
    best_cold = cold[np.argmax(scores[:, cold], axis=1)]
    user_cluster = np.array([clusters.user_cluster[k] for k in ds.user_keys])
    assert np.mean(clusters.item_cluster[best_cold] == user_cluster) >= 0.8
    # ...and an own-cluster cold item is competitive with warm items (top half of the catalogue)
    own_cold = np.array([cold[clusters.item_cluster[cold] == c].max() for c in user_cluster])
    ranks = (scores > scores[np.arange(len(scores)), own_cold][:, None]).sum(1)
    assert np.median(ranks) < ds.n_items / 4


def test_same_code_path_on_the_resolved_device(clusters_split, cluster_onehot):
    """device="auto" resolves to CPU here (CUDA where present) and training works there."""
    device = resolve_device("auto")
    model = make_recommender("sequential", {**FAST_SEQUENTIAL, "max_epochs": 2,
                                            "device": str(device)})
    progress = []
    model.fit(clusters_split.train, item_embeddings=cluster_onehot, valid=clusters_split.valid,
              progress=progress.append)
    assert model.device == device
    assert [p["epoch"] for p in progress] == [1, 2]
    assert {"loss", "valid_ndcg"} <= set(progress[0])
    assert np.isfinite(model.score(np.arange(3))).all()


def test_seeded_training_is_reproducible(clusters_split):
    params = {**FAST_SEQUENTIAL, "max_epochs": 2, "use_text": False}
    a = make_recommender("sequential", params).fit(clusters_split.train).score(np.arange(4))
    b = make_recommender("sequential", params).fit(clusters_split.train).score(np.arange(4))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad", ["cuda:99"])
def test_explicit_missing_device_fails_clearly(bad, clusters_split):
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > 99:  # pragma: no cover
        pytest.skip("machine has 100 GPUs")
    with pytest.raises(ValueError, match="cuda"):
        make_recommender("sequential", {**FAST_SEQUENTIAL, "device": bad}).fit(clusters_split.train)


def test_basket_positions_and_discover_targets():
    """One position per order (its lines pooled), and the targets of a position are the next
    order's items the customer never bought: the loss cannot reward re-predicting a purchase."""
    from recommendations.engine.models.sequential import _chunks

    baskets = [np.array([0, 1, 2]), np.array([1, 3]), np.array([0, 4, 5])]
    inputs, targets = _chunks([baskets], max_len=4, width=3, n_targets=3, new_only=True,
                              rng=np.random.default_rng(0))
    assert inputs.shape == (1, 4, 3) and targets.shape == (1, 4, 3)
    # two positions (orders 1 and 2 predict orders 2 and 3), left-padded
    assert (inputs[0, :2] == 0).all()
    assert sorted(inputs[0, 2][inputs[0, 2] > 0] - 1) == [0, 1, 2]
    assert sorted(targets[0, 2][targets[0, 2] > 0] - 1) == [3]  # item 1 was bought before
    assert sorted(targets[0, 3][targets[0, 3] > 0] - 1) == [4, 5]  # item 0 was bought before


def test_plain_sasrec_is_the_same_model_without_baskets(clusters_split):
    seq = make_recommender("sequential", {**FAST_SEQUENTIAL, "max_epochs": 1, "baskets": False,
                                          "use_text": False}).fit(clusters_split.train)
    assert seq.fit_info["positions"] >= clusters_split.train.n_events - 2 * clusters_split.train.n_users

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

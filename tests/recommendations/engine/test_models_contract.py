"""Every algorithm in ALGORITHMS goes through the same contract on planted data."""

import numpy as np
import pytest

from recommendations.engine.metrics import evaluate
from recommendations.engine.models import ALGORITHMS, load_recommender, make_recommender

from .conftest import FAST_SEQUENTIAL

PARAMS = {"popularity": {}, "trending": {}, "itemknn": {}, "ease": {"l2": 10.0}, "ease_trending": {"l2": 10.0},
          "sequential": FAST_SEQUENTIAL}


@pytest.fixture(scope="module")
def fitted(clusters_split, cluster_onehot):
    """Each algorithm fit once on the planted-cluster train split (test = fold-in histories)."""
    models = {}
    for name in ALGORITHMS:
        model = make_recommender(name, PARAMS[name]).fit(
            clusters_split.train, item_embeddings=cluster_onehot, valid=clusters_split.valid
        )
        model.set_histories(clusters_split.train_valid)
        models[name] = model
    return models


@pytest.fixture(scope="module")
def test_metrics(fitted, clusters_split):
    return {
        name: evaluate(model, clusters_split.train_valid, clusters_split.test, k=10)
        for name, model in fitted.items()
    }


def test_registry_covers_the_six_algorithms():
    assert set(ALGORITHMS) == {"popularity", "trending", "itemknn", "ease", "ease_trending", "sequential"}


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_score_shape_and_recommend_excludes_seen(name, fitted, clusters_split):
    model = fitted[name]
    users = np.arange(5)
    scores = model.score(users)
    assert scores.shape == (5, clusters_split.train.n_items) and scores.dtype == np.float32
    items, top = model.recommend(users, k=7)
    assert items.shape == (5, 7) and np.all(np.diff(top, axis=1) <= 0)
    seen = clusters_split.train_valid.csr(binary=True)
    for row, user in enumerate(users):
        assert not set(items[row]) & set(seen[user].indices)
    probs = model.probability(scores)
    assert np.all((probs >= 0) & (probs <= 1))


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_score_histories_for_new_customers(name, fitted):
    scores = fitted[name].score_histories([[0, 1, 2], [], [40]])
    assert scores.shape == (3, fitted[name].n_items)
    assert np.isfinite(scores).all()


def test_popularity_beats_random(test_metrics, clusters_split):
    random_hr = 10 / clusters_split.train.n_items
    assert test_metrics["popularity"]["hr@10"] > random_hr


@pytest.mark.parametrize("name", [n for n in sorted(ALGORITHMS) if n not in ("popularity", "trending")])
def test_personalised_models_far_above_popularity(name, test_metrics):
    """The cluster pattern is easy: every personalised model reaches HR@10 >= 0.6 and at
    least 3x popularity."""
    hr = test_metrics[name]["hr@10"]
    assert hr >= 0.6
    assert hr >= 3 * test_metrics["popularity"]["hr@10"]


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_save_load_round_trip_gives_identical_scores(name, fitted, tmp_path):
    model = fitted[name]
    model.calibration = (0.5, -1.0)
    model.save(tmp_path / name)
    loaded = load_recommender(tmp_path / name)
    users = np.arange(20)
    assert type(loaded) is type(model)
    assert loaded.item_keys == model.item_keys and loaded.user_keys == model.user_keys
    np.testing.assert_allclose(loaded.score(users), model.score(users), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(loaded.recommend(users, 5)[0], model.recommend(users, 5)[0])
    assert tuple(loaded.calibration) == (0.5, -1.0)


def test_saved_artifacts_are_pickle_free(fitted, tmp_path):
    fitted["sequential"].save(tmp_path)
    with np.load(tmp_path / "arrays.npz", allow_pickle=False) as z:
        assert "user_keys" in z.files
    import torch

    torch.load(tmp_path / "model.pt", weights_only=True)


def test_unknown_parameter_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown parameter"):
        make_recommender("ease", {"lambda_": 3})
    with pytest.raises(ValueError, match="Unknown algorithm"):
        make_recommender("als")


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_forget_users_erases_per_customer_state(name, fitted, tmp_path):
    """Erasure: the customer's key, seen row and history are gone from the saved artefact; others score as before."""
    model = load_recommender(fitted[name].save(tmp_path / "before"))  # a copy: the module fixture stays intact
    erased, kept = model.user_keys[3], np.array([0, 1, 2, 4])
    before = model.score(kept)
    assert model.seen_mask_rows(np.array([3])).nnz > 0
    # when
    assert model.forget_users({erased, "no-such-customer"}) == 1
    reloaded = load_recommender(model.save(tmp_path / "after"))
    # then
    assert erased not in reloaded.user_keys and reloaded.user_keys[3] == ""
    assert reloaded.seen_mask_rows(np.array([3])).nnz == 0
    np.testing.assert_allclose(reloaded.score(np.array([3])), reloaded.score_histories([[]]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(reloaded.score(kept), before, rtol=1e-5, atol=1e-5)
    assert not np.isin(np.asarray(reloaded.user_keys), [erased]).any()

"""The Django-facing entry point: selection, evaluation, calibration, refit."""

import json

import numpy as np

from recommendations.engine.data import build_dataset
from recommendations.engine.models import load_recommender
from recommendations.engine.models.calibration import apply_platt, fit_platt
from recommendations.engine.train import fit_recommender

from .conftest import FAST_SEQUENTIAL


def test_fit_platt_recovers_a_known_logistic():
    rng = np.random.default_rng(0)
    s = rng.normal(size=20000)
    y = rng.random(20000) < 1 / (1 + np.exp(-(2.0 * s - 1.0)))
    a, b = fit_platt(s, y)
    assert abs(a - 2.0) < 0.15 and abs(b + 1.0) < 0.1
    assert apply_platt(np.array([0.5]), a, b)[0] == np.float32(apply_platt(np.array([0.5]), a, b)[0])


def test_auto_selects_on_validation_and_reports_everything(clusters, cluster_onehot, tmp_path):
    # given
    ds, _ = build_dataset(clusters.events, item_keys=clusters.item_keys)
    events = []
    # when
    model, metrics = fit_recommender(
        "auto", ds, cluster_onehot,
        params={"candidates": {"popularity": {}, "ease": {"l2": 10.0},
                               "sequential": {**FAST_SEQUENTIAL, "max_epochs": 8}}},
        device="auto", progress=events.append,
    )
    # then
    assert metrics["algorithm"] in {"ease", "sequential"}
    assert {c["algorithm"] for c in metrics["selection"]} == {"popularity", "ease", "sequential"}
    assert metrics["test_hr@10"] > 0.5 and metrics["valid_ndcg@10"] > 0.3
    assert {"train_seconds", "score_seconds", "refit_seconds"} <= set(metrics["timings"])
    json.dumps(metrics)  # plain JSON for the model-version row
    # the chosen candidate is not fit twice: selection's model is evaluated, then refit on all data
    assert {e["stage"] for e in events} >= {"select"} and "fit" not in {e["stage"] for e in events}
    discover = metrics["tasks"]["discover"]
    assert discover["ndcg@10"] == metrics["test_ndcg@10"] and discover["ndcg@10_se"] > 0
    assert {"popularity", "ease", "sequential"} == set(discover["baselines"])
    verdicts = [c["verdict"] for c in metrics["selection"]]
    assert sum(v.startswith("reference") for v in verdicts) == 1
    # the final model scores every customer from their full history and is calibrated
    probs = model.probability(model.score(np.arange(ds.n_users)))
    assert probs.shape == (ds.n_users, ds.n_items)
    assert 0 < probs.mean() < 0.5
    model.save(tmp_path)
    assert load_recommender(tmp_path).recommend(np.arange(2), 3)[0].shape == (2, 3)


def test_sequential_refit_uses_best_epoch(clusters, cluster_onehot):
    ds, _ = build_dataset(clusters.events, item_keys=clusters.item_keys)
    model, metrics = fit_recommender("sequential", ds, cluster_onehot,
                                     params={**FAST_SEQUENTIAL, "max_epochs": 3}, refit=True)
    assert metrics["refit"] is True
    assert model.fit_info["epochs_run"] == metrics["refit_epochs"] <= 3
    assert model.fit_info["best_valid_ndcg"] is None  # refit has no validation

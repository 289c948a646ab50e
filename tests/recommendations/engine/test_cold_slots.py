"""The cold stage (``engine.cold_slots``): a few places of the served list for cold items.

On the variant shop (see ``test_cold_items``) popularity never serves a cold item; the stage gives
the bottom places of the top 10 to the text-only list's best unbought cold items, chosen on
validation, and every serving path (evaluation, saved model, batch scorer, export) serves the
same list.
"""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.engine.batch_scoring import PackedHistories, score_batches, scorer_for
from recommendations.engine.cold_slots import ColdSlots, ColdSlotsConfig, choose_cold_slots, history_matrix
from recommendations.engine.data import build_dataset, leave_last_out_split
from recommendations.engine.metrics import evaluate
from recommendations.engine.models import load_recommender, make_recommender
from recommendations.engine.models.text_only import TextOnly
from recommendations.engine.synthetic import planted_clusters
from recommendations.engine.train import cold_stage_attach, fit_recommender

from .conftest import FAST_SEQUENTIAL
from .test_cold_items import variant_shop


@pytest.fixture(scope="module")
def shop():
    events, keys, _, emb = variant_shop()
    ds, _ = build_dataset(events, item_keys=keys)
    return ds, leave_last_out_split(ds), emb


def test_cold_slots_serve_text_only_cold_picks_below_the_model_list(shop):
    # given: popularity, which serves no cold item
    _, split, emb = shop
    model = make_recommender("popularity").fit(split.train, item_embeddings=emb)
    users = np.unique(split.valid[:, 0])[:30]
    base_items, base_scores = model.recommend(users, k=10)
    text = TextOnly().fit(split.train, item_embeddings=emb)
    text_scores = text.score(users)
    # when
    profile = ColdSlotsConfig(slots=3, match="profile", n_recent=20)  # the text-only baseline's order
    model.set_cold_stage(ColdSlots(profile, emb, split.train.item_counts()), split.train)
    items, scores = model.recommend(users, k=10)
    # then: the text-only list's first 3 unbought cold items, in its order, and the rest of the
    # model's list in its order; they take its last 3 places unless the model ties across that
    # boundary (popularity does), when they go just above the tie
    cold = split.train.item_counts() < 5
    seen = split.train.csr(binary=True)
    untied = 0
    for r, u in enumerate(users):
        row = np.where(cold & (np.asarray(seen[u].todense()).ravel() == 0), text_scores[r], -np.inf)
        picks = np.argsort(-row, kind="stable")[:3]
        is_pick = np.isin(items[r], picks)
        np.testing.assert_array_equal(items[r][is_pick], picks)
        kept = [v for i, v in zip(base_items[r], base_scores[r], strict=True) if i not in picks][:7]
        np.testing.assert_array_equal(scores[r][~is_pick], kept)  # the model's values (ties: any order)
        # the picks tie with nothing (top_k would break such ties arbitrarily)
        assert (np.diff(scores[r][is_pick]) < 0).all() and not np.isin(scores[r][is_pick], kept).any()
        if base_scores[r, 6] > base_scores[r, 7] and not np.isin(base_items[r, :7], picks).any():
            untied += 1
            np.testing.assert_array_equal(items[r, 7:], picks)
    assert untied > 0


def test_served_list_hits_cold_targets_the_model_alone_never_reaches(shop):
    # given
    _, split, emb = shop
    model = make_recommender("popularity").fit(split.train, item_embeddings=emb)
    model.set_histories(split.train_valid)
    before = evaluate(model, split.train_valid, split.test, k=10)
    model.set_histories(split.train)
    # when: the stage chosen on validation
    report = cold_stage_attach(model, split, emb)
    model.set_histories(split.train_valid)
    after = evaluate(model, split.train_valid, split.test, k=10)
    # then
    assert before["cold_hr@10"] == 0.0
    assert report["chosen"]["slots"] > 0
    assert after["cold_hr@10"] > 0.1
    assert after["ndcg@10"] >= before["ndcg@10"] - 2 * before["ndcg@10_se"]


def test_validation_rule_gives_no_slot_when_cold_items_are_never_bought():
    # given: cold catalogue items with text that nobody ever buys
    data = planted_clusters(n_users=200, n_clusters=4, items_per_cluster=15, n_cold_per_cluster=4, seed=1)
    ds, _ = build_dataset(data.events, item_keys=data.item_keys)
    split = leave_last_out_split(ds)
    emb = np.zeros((ds.n_items, 6), np.float32)
    emb[np.arange(ds.n_items), data.item_cluster] = 1.0
    model = make_recommender("ease").fit(split.train)
    # when
    stage, report = choose_cold_slots(model, split.train, split.valid, emb)
    # then
    assert stage.config.slots == 0
    assert all(not row["ok"] for row in report["valid"][1:])
    assert any(row["served_per_list"] > 0 for row in report["valid"][1:])  # it did try them


def _two_slot_model(shop, algorithm: str):
    """``algorithm`` fit on the shop's training part with 2 cold slots; the first 40 histories."""
    _, split, emb = shop
    params = {**FAST_SEQUENTIAL, "max_epochs": 2} if algorithm == "sequential" else {}
    model = make_recommender(algorithm, params).fit(split.train, item_embeddings=emb, valid=split.valid)
    model.set_cold_stage(ColdSlots(ColdSlotsConfig(slots=2), emb, split.train.item_counts()), split.train)
    return model, [h.tolist() for h in split.train.sequences()[:40]]


@pytest.mark.parametrize("algorithm", ["popularity", "sequential"])
def test_saved_model_batch_scorer_and_export_serve_the_engines_list(shop, algorithm, tmp_path):
    # given
    _, split, _ = shop
    model, histories = _two_slot_model(shop, algorithm)
    # when
    loaded = load_recommender(model.save(tmp_path / "m"))
    direct = model.served_score_histories(histories)
    packed = PackedHistories.from_lists(histories)
    batch = next(score_batches(scorer_for(loaded, device="cpu"), packed, 10, exclude=packed))
    # then: the saved stage is the fitted one, and the batch scorer's list is the engine's
    assert loaded.cold_stage is not None and loaded.cold_stage.config == model.cold_stage.config
    np.testing.assert_allclose(loaded.served_score_histories(histories), direct, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loaded.served_score(np.arange(40)), model.served_score(np.arange(40)),
                               rtol=1e-5, atol=1e-5)
    for r, h in enumerate(histories):
        row = direct[r].copy()
        row[h] = -np.inf
        expected = np.argsort(-row, kind="stable")[:10]
        np.testing.assert_array_equal(batch.items[r], expected)
    cold = split.train.item_counts() < 5
    assert cold[batch.items[:, 8:]].mean() > 0.9  # the two cold slots are served


def test_fit_recommender_keeps_the_validated_stage_through_the_refit(shop):
    ds, _, emb = shop
    model, metrics = fit_recommender("popularity", ds, item_embeddings=emb)
    chosen = metrics["cold_slots"]["chosen"]
    assert chosen["slots"] > 0
    assert model.cold_stage is not None and model.cold_stage.config.slots == chosen["slots"]
    assert metrics["test_cold_hr@10"] > 0
    assert (model.cold_stage.item_pop == ds.item_counts()).all()  # cold = few events in ALL the data


@pytest.mark.parametrize("algorithm", ["popularity", "sequential"])
def test_batch_scorer_hands_on_its_cold_picks_chosen_once_per_row(shop, algorithm, cold_choices):
    # given: a model with 2 cold slots; every call of the stage's choice is counted from here on
    model, histories = _two_slot_model(shop, algorithm)
    packed = PackedHistories.from_lists(histories)
    arrays = [np.asarray(h, np.int64) for h in histories]
    expected = model.cold_stage.choose(arrays, history_matrix(arrays, model.n_items))[0]
    cold_choices.clear()
    # when: three batches
    batches = list(score_batches(scorer_for(model, device="cpu"), packed, 10, exclude=packed, batch_size=16))
    # then: each batch carries the picks its scores were made with (the stage's choice), made once per row
    assert [len(b.rows) for b in batches] == [16, 16, 8]
    assert sum(cold_choices) == len(histories)
    picks = np.concatenate([b.cold_picks for b in batches])
    np.testing.assert_array_equal(picks, expected)
    assert (picks >= 0).any()
    for b in batches:  # a pick is served (in the top 10) wherever one was made
        for r, row in zip(b.rows, b.cold_picks, strict=True):
            assert np.isin(row[row >= 0], b.items[r - b.rows[0]]).all()


def test_a_model_without_a_cold_stage_hands_on_no_picks(shop):
    _, split, emb = shop
    model = make_recommender("popularity").fit(split.train, item_embeddings=emb)
    packed = PackedHistories.from_lists([h.tolist() for h in split.train.sequences()[:5]])
    assert next(score_batches(scorer_for(model, device="cpu"), packed, 10)).cold_picks is None


@pytest.mark.parametrize("match", ["nearest", "profile"])
def test_the_grid_chooses_once_per_batch_and_reports_what_each_configuration_chose_alone(shop, cold_choices, match):
    # given: popularity; noisy text vectors and thresholds that some picks pass and some do not
    # (the terciles of the widest configuration's pick cosines)
    from recommendations.engine.cold_slots import SLOT_GRID, _Staged, base_top, grid
    from recommendations.engine.metrics import evaluate_ranks

    _, split, emb = shop
    emb = emb + np.random.default_rng(0).normal(0, 0.25, emb.shape).astype(np.float32)
    model = make_recommender("popularity").fit(split.train, item_embeddings=emb)
    seen, histories = split.train.csr(binary=True), split.train.sequences()
    off = ColdSlots(ColdSlotsConfig(slots=0, match=match), emb, split.train.item_counts())
    users = np.unique(split.valid[:, 0])
    widest = off.with_config(ColdSlotsConfig(slots=max(SLOT_GRID), match=match))
    cos = widest.choose([histories[u] for u in users], seen[users])[1]
    low, high = np.quantile(cos[np.isfinite(cos)], [1 / 3, 2 / 3]).round(4).tolist()
    configs = grid(cosines=(None, low, high), match=match)
    # the reference: each configuration's picks chosen on their own (what the grid did before)
    top = base_top(model, split.valid[:, 0], seen)
    alone = []
    for cfg in configs:
        staged = _Staged(top, off.with_config(cfg), histories, seen)
        m, ranks = evaluate_ranks(staged, split.train, split.valid, k=10, with_coverage=False)
        alone.append((m["ndcg@10"], staged.served))
    cold_choices.clear()
    # when
    stage, report = choose_cold_slots(model, split.train, split.valid, emb, configs=configs)
    # then: the same numbers for every configuration, from one choice per batch of customers
    n_lists = len(np.unique(split.valid[:, 0]))
    assert [(r["ndcg"], r["served_per_list"]) for r in report["valid"]] == [(m, s / n_lists) for m, s in alone]
    by_slots = {}
    for cfg, (_, served) in zip(configs, alone, strict=True):
        by_slots.setdefault(cfg.slots, set()).add(served)
    assert all(len(served) == 3 for slots, served in by_slots.items() if slots)  # every threshold cut
    batches = [len(np.unique(split.valid[lo : lo + 512, 0])) for lo in range(0, len(split.valid), 512)]
    assert cold_choices == batches


def _one_customer_stage(match: str) -> tuple[ColdSlots, list[np.ndarray], np.ndarray]:
    """Bought: items 0, 1, 2 (orthogonal texts). Cold: 3, a variant of item 0 (same text), and 4,
    a product whose text lies between all three (their mean's direction). Warm filler: 5-9."""
    text = np.zeros((10, 8), np.float32)
    text[[0, 1, 2, 3], [0, 1, 2, 0]] = 1.0
    text[4, :3] = 1.0
    text[5:, 3:] = np.eye(5, dtype=np.float32)
    counts = np.array([9, 9, 9, 0, 1, 9, 9, 9, 9, 9])
    return ColdSlots(ColdSlotsConfig(slots=2, match=match), text, counts), [np.array([0, 1, 2])], counts


def test_nearest_match_prefers_the_variant_of_one_bought_item_to_the_mean_direction():
    # given
    nearest, hist, _ = _one_customer_stage("nearest")
    profile, _, _ = _one_customer_stage("profile")
    seen = history_matrix(hist, 10)
    # when
    items_n, cos_n = nearest.choose(hist, seen)
    items_p, cos_p = profile.choose(hist, seen)
    # then: nearest = the variant first (cosine 1 to item 0); profile = the mean's direction first
    assert items_n.tolist() == [[3, 4]] and np.allclose(cos_n, [[1.0, 1 / np.sqrt(3)]])
    assert items_p.tolist() == [[4, 3]] and np.allclose(cos_p, [[1.0, 1 / np.sqrt(3)]])


def test_nearest_match_equals_the_brute_force_maximum_over_each_rows_latest_items(shop, monkeypatch):
    # given: noisy texts, so every cosine differs; blocks of 7 rows (the stage works in blocks)
    import recommendations.engine.cold_slots as cold_slots

    monkeypatch.setattr(cold_slots, "NEAREST_CHUNK", 7)
    _, split, emb = shop
    emb = emb + np.random.default_rng(1).normal(0, 0.25, emb.shape).astype(np.float32)
    stage = ColdSlots(ColdSlotsConfig(slots=4, n_recent=3), emb, split.train.item_counts())
    histories = split.train.sequences()[:40] + [np.zeros(0, np.int64)]  # and one without a history
    cold_idx = np.flatnonzero(stage.cold)
    # when
    cos, has = stage.cold_cosine(histories, cold_idx)
    # then
    unit = stage.text
    for r, h in enumerate(histories[:-1]):
        latest = list(dict.fromkeys(h[::-1].tolist()))[:3]
        np.testing.assert_allclose(cos[r], (unit[latest] @ unit[cold_idx].T).max(0), atol=1e-6)
    assert has.tolist() == [True] * 40 + [False] and np.isneginf(cos[-1]).all()


def test_a_stage_saved_before_the_match_setting_keeps_its_mean_profile_order():
    # given: a stage's saved config as versions before the setting stored it
    stage, hist, counts = _one_customer_stage("profile")
    saved = {k: v for k, v in stage.to_json().items() if k != "match"}
    # when
    loaded = ColdSlots.from_saved(saved, stage.to_arrays())
    # then
    assert loaded.config.match == "profile"
    assert loaded.choose(hist, history_matrix(hist, 10))[0].tolist() == [[4, 3]]


def test_an_unknown_match_is_refused():
    with pytest.raises(ValueError, match="match must be one of nearest, profile"):
        _one_customer_stage("closest")

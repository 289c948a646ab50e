"""The rules that keep a large retail run inside its time budget (issue 9): EASE's item cap, the
text encoder's token-budget batches. Each must change nothing where it does not apply."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.engine.data import Dataset
from recommendations.engine.models import EASE, load_recommender
from recommendations.engine.models.ease import OUTSIDE_SCORE


def _shop(seed: int = 0, n_users: int = 120, n_items: int = 60) -> Dataset:
    """Purchases with a skewed (Zipf-like) item popularity, so a cap cuts a real tail."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1) ** 0.8
    p /= p.sum()
    users = np.repeat(np.arange(n_users), 8)
    items = rng.choice(n_items, size=len(users), p=p)
    ts = np.tile(np.arange(8, dtype=np.float64), n_users) * 86400.0
    return Dataset(users, items, ts, np.ones(len(users), np.float32),
                   [f"u{u}" for u in range(n_users)], [f"i{i}" for i in range(n_items)])


def test_ease_cap_at_or_above_the_catalogue_changes_nothing():
    ds = _shop()
    n_active = int((ds.item_counts() > 0).sum())
    users = np.arange(ds.n_users)
    full = EASE(max_items=10**6).fit(ds).score(users)
    exact = EASE(max_items=n_active).fit(ds).score(users)
    np.testing.assert_array_equal(full, exact)


def test_items_beyond_the_ease_cap_rank_below_every_covered_item_most_popular_first():
    ds = _shop()
    cap = 20
    model = EASE(max_items=cap).fit(ds)
    counts = ds.item_counts()
    covered = np.zeros(ds.n_items, bool)
    covered[model._active] = True
    assert covered.sum() == cap
    # the cap keeps the most-purchased items
    assert counts[covered].min() >= counts[~covered].max()
    scores = model.score(np.arange(ds.n_users))
    assert scores[:, covered].min() > scores[:, ~covered].max()
    assert scores[:, ~covered].max() <= OUTSIDE_SCORE
    # among themselves the tail is ordered by popularity (the same for every customer)
    tail = np.flatnonzero(~covered)
    order = tail[np.argsort(-scores[0, tail], kind="stable")]
    assert np.all(np.diff(counts[order]) <= 0)
    # recommendations come from the covered items while there are enough of them
    items, _ = model.recommend(np.arange(ds.n_users), k=5)
    assert covered[items].all()


def test_ease_tail_survives_save_and_load(tmp_path):
    ds = _shop(seed=1)
    model = EASE(max_items=15).fit(ds)
    loaded = load_recommender(model.save(tmp_path / "ease"))
    users = np.arange(ds.n_users)
    np.testing.assert_array_equal(model.score(users), loaded.score(users))
    np.testing.assert_array_equal(model.score_histories([[0, 3], [59]]), loaded.score_histories([[0, 3], [59]]))


def test_ease_matches_the_closed_form():
    """The torch inverse computes the same B as the textbook numpy formula."""
    ds = _shop(seed=2, n_items=30)
    model = EASE(max_items=1000, l2=50.0).fit(ds)
    x = ds.csr(binary=True)[:, model._active].toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + 50.0 * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(model._b, b, rtol=1e-4, atol=1e-6)


def test_the_product_setting_is_the_engine_default():
    from recommendations.conf import DEFAULTS
    from recommendations.engine.models import EASEConfig

    assert DEFAULTS["EASE_MAX_ITEMS"] == EASEConfig().max_items


# ------------------------------------------------------------------ text encoder batches
class _Lengths:
    """Just the batching rule of TextEncoder, without loading a model."""

    def __init__(self, batch_size: int, max_batch_tokens: int) -> None:
        from recommendations.engine.text import TextEncoder

        self.enc = TextEncoder.__new__(TextEncoder)
        self.enc.batch_size, self.enc.max_batch_tokens = batch_size, max_batch_tokens


@pytest.mark.parametrize("batch_size,budget", [(512, 16384), (4, 100), (1, 1)])
def test_token_budget_batches_cover_every_text_once_within_both_limits(batch_size, budget):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 129, size=1000).tolist()
    batches = _Lengths(batch_size, budget).enc.batches(lengths)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= batch_size
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= budget


def test_short_titles_go_in_large_batches_long_texts_in_small_ones():
    lengths = [128] * 300 + [8] * 3000
    batches = _Lengths(512, 16384).enc.batches(lengths)
    assert max(len(b) for b in batches) == 512
    assert all(len(b) == 128 for b in batches[:2])  # the long texts come first, 16384 // 128 each


def test_batched_encoding_equals_one_text_at_a_time(text_encoder):
    texts = ["Product 4710088620", "Organic whole milk 1 l. dairy", "x", "Dark chocolate. 70% cocoa. tags: vegan"]
    together = text_encoder.encode(texts)
    alone = np.stack([text_encoder.encode([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_calibration_scores_each_customer_once_with_the_same_result():
    """Several targets of one customer share one score row; the Platt fit is what it was when
    every target row was scored on its own."""
    from recommendations.engine.models import calibrate, fit_platt

    ds = _shop(seed=3)
    model = EASE(max_items=40).fit(ds)
    rng = np.random.default_rng(7)
    targets = np.stack([np.repeat(np.arange(30), 4), rng.integers(0, ds.n_items, 120)], 1)
    calls = []
    score = model.score
    model.score = lambda users: calls.append(len(users)) or score(users)
    a, b = calibrate(model, targets, n_negatives=20, seed=0)
    assert sum(calls) == 30  # not 120
    # the reference: every target row scored on its own, same negatives (bought items and the
    # uncovered tail beyond the cap left out, as calibrate does)
    rng = np.random.default_rng(0)
    sc = score(targets[:, 0])
    cols = rng.integers(0, ds.n_items, size=(len(targets), 20))
    bought = model.seen_mask_rows(targets[:, 0]).toarray() > 0
    pos = sc[np.arange(len(targets)), targets[:, 1]]
    rows = np.repeat(np.arange(len(targets)), 20)
    neg = sc[rows, cols.ravel()][~bought[rows, cols.ravel()]]
    pos, neg = pos[pos > model.score_floor], neg[neg > model.score_floor]
    ref = fit_platt(np.r_[pos, neg], np.r_[np.ones(len(pos)), np.zeros(len(neg))],
                    np.r_[np.ones(len(pos)), np.full(len(neg), (ds.n_items - 1) / 20)])
    np.testing.assert_allclose((a, b), ref, rtol=1e-9)
    assert a > 0  # the capped tail no longer flattens the slope


def test_ease_weights_are_c_contiguous_after_fit_and_load(tmp_path):
    """scipy's sparse @ dense copies a Fortran-ordered matrix on every call: scoring a batch of
    customers would copy the whole n x n weight matrix (torch's inverse comes back column-major)."""
    ds = _shop(seed=4, n_items=50)
    model = EASE(max_items=1000).fit(ds)
    assert model._b.flags.c_contiguous
    loaded = load_recommender(model.save(tmp_path / "ease"))
    assert loaded._b.flags.c_contiguous


def test_a_time_capped_sequential_fit_stops_inside_its_first_epoch(clusters_split, monkeypatch):
    """The budget is checked after every step, not only between epochs, so one long epoch cannot
    overshoot it (a fake clock: each perf_counter call is one second later)."""
    from recommendations.engine.models import Sequential
    from recommendations.engine.models import sequential as seq_module

    ticks = iter(range(10**9))
    monkeypatch.setattr(seq_module.time, "perf_counter", lambda: float(next(ticks)))
    steps = []
    real_loss = Sequential._loss
    monkeypatch.setattr(Sequential, "_loss", lambda self, *a, **k: steps.append(1) or real_loss(self, *a, **k))
    model = Sequential(max_len=20, dim=16, max_epochs=5, batch_size=16, min_steps_per_epoch=1,
                       max_train_seconds=8, use_text=False, seed=0)
    model.fit(clusters_split.train, valid=clusters_split.valid)
    batches_per_epoch = model.fit_info["n_chunks"] / 16
    assert model.fit_info["epochs_run"] == 1
    assert 1 <= len(steps) < batches_per_epoch

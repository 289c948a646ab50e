"""Cold items (fewer than 5 training purchases): the case the text path exists for.

The shop below is built so that TEXT predicts the target: products come in types (yoghurt,
beer, ...), each customer buys within one type, and a type's variants share ONE text (the
flavours of one product line: the catalogue text says the type, size and maker, not the
flavour), the way 63% of completejourney's products share their text with another product.
Most variants are bought rarely, so about half of the new-item targets are cold.
"""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.engine.data import build_dataset, leave_last_out_split
from recommendations.engine.metrics import evaluate
from recommendations.engine.models import make_recommender
from recommendations.engine.models.text_only import TextOnly

from .conftest import FAST_SEQUENTIAL


def variant_shop(n_customers: int = 300, n_types: int = 6, variants: int = 24, n_popular: int = 6,
                 seed: int = 0) -> tuple[list, list[str], np.ndarray, np.ndarray]:
    """(events, item keys, item type, one-hot 'text' embeddings with one identical vector per
    type). Each customer re-buys one or two popular variants of their type, one order every few
    days, and tries one variant new to them in most orders: a popular one or (half the time) any
    variant of the type, so many of those are bought by almost nobody else."""
    rng = np.random.default_rng(seed)
    keys = [f"T{t}-V{v:02d}" for t in range(n_types) for v in range(variants)]
    item_type = np.repeat(np.arange(n_types), variants)
    emb = np.zeros((len(keys), n_types + 2), np.float32)
    emb[np.arange(len(keys)), item_type] = 1.0
    emb[:, -2:] = 0.5  # a shared template component (every text says "Department: ...")
    events = []
    for c in range(n_customers):
        t = int(rng.integers(n_types))
        base = t * variants
        staples = base + rng.choice(n_popular, 2, replace=False)
        tried: set[int] = set(staples.tolist())
        ts = 1_700_000_000.0 + float(rng.integers(0, 86400 * 10))
        for n in range(int(rng.integers(4, 8))):
            lines = {int(staples[n % 2])}
            if n > 0 and rng.random() < 0.8:
                pool = n_popular if rng.random() < 0.5 else variants
                fresh = [base + v for v in range(pool) if base + v not in tried]
                if fresh:
                    pick = int(rng.choice(fresh))
                    lines.add(pick)
                    tried.add(pick)
            for item in sorted(lines):
                events.append((f"c{c:04d}", keys[item], "purchase", ts, None, f"o{c}-{n}"))
            ts += 86400.0 * float(rng.integers(2, 9))
    return events, keys, item_type, emb


@pytest.fixture(scope="module")
def shop():
    events, keys, item_type, emb = variant_shop()
    ds, _ = build_dataset(events, item_keys=keys)
    return leave_last_out_split(ds), item_type, emb


def test_the_variant_shop_has_cold_targets_whose_text_is_shared(shop):
    split, item_type, emb = shop
    counts = split.train.item_counts()
    cold = counts[split.valid[:, 1]] < 5
    assert cold.mean() > 0.3
    # every target's text is shared by more unseen products than fit in a top 10
    assert (np.bincount(item_type) > 10 + 6).all()


def test_text_only_hits_targets_its_text_predicts(shop):
    """Root cause of 'text-only hits nothing' on completejourney: products that share a text
    get EXACTLY equal cosines, the metrics count ties against the target (by design: a scorer
    that cannot tell items apart gets no credit for them), so a target among more than 10
    equal-text unseen products could never be a hit, and the list actually served (top_k
    picks arbitrarily among ties) was not the one measured. The scorer must order its ties."""
    # given
    split, item_type, emb = shop
    # when
    model = TextOnly().fit(split.train, item_embeddings=emb)
    m = evaluate(model, split.train, split.valid, k=10)
    # then: the profile is the customer's type; its unseen variants fill the top of the list
    assert m["hr@10"] >= 0.3
    assert m["cold_hr@10"] >= 0.15
    scores = model.score(np.arange(split.train.n_users))
    assert all(len(np.unique(row)) == len(row) for row in scores[:20])  # no ties left


def test_text_only_breaks_ties_by_popularity(shop):
    """Among products with the same text, the one more customers bought comes first."""
    split, item_type, emb = shop
    model = TextOnly().fit(split.train, item_embeddings=emb)
    counts = split.train.item_counts()
    row = model.score(np.array([0]))[0]
    own = np.flatnonzero(item_type == item_type[split.train.item_idx[split.train.user_idx == 0][0]])
    order = own[np.argsort(-row[own])]
    assert (np.diff(counts[order]) <= 0).all()


def test_flagship_hits_cold_targets_at_least_as_often_as_text_only(shop):
    # given
    split, item_type, emb = shop
    text_only = TextOnly().fit(split.train, item_embeddings=emb)
    flagship = make_recommender("sequential", {**FAST_SEQUENTIAL, "max_epochs": 15}).fit(
        split.train, item_embeddings=emb, valid=split.valid)
    for model in (text_only, flagship):
        model.set_histories(split.train_valid)
    # when
    t = evaluate(text_only, split.train_valid, split.test, k=10)
    f = evaluate(flagship, split.train_valid, split.test, k=10)
    # then
    assert t["cold_hr@10"] > 0.1
    assert f["cold_hr@10"] >= t["cold_hr@10"] - 2 * t["cold_hr@10_se"]
    assert f["cold_hr@10"] > 0.1


@pytest.fixture(scope="module")
def quick_flagship(shop):
    split, _, emb = shop
    return make_recommender("sequential", {**FAST_SEQUENTIAL, "max_epochs": 2}).fit(
        split.train, item_embeddings=emb, valid=split.valid)


def test_cold_placement_keeps_the_warm_order_and_leaves_no_ties(shop, quick_flagship):
    split, _, _ = shop
    model = quick_flagship
    cold = split.train.item_counts() < 5
    model._cold, model._cold_strength = cold, 1.0
    users = np.arange(40)
    tokens = model._hist[users]
    raw = model._score_tokens(tokens)
    placed = model._blend_cold(raw, tokens)
    np.testing.assert_array_equal(placed[:, ~cold], raw[:, ~cold])  # warm items keep the model's scores
    for row in placed:
        assert len(np.unique(row)) == len(row)
    # a stronger text weight moves cold items up the list, never down
    model._cold_strength = 0.25
    weak = model._blend_cold(raw, tokens)
    rank = lambda s: (s[:, :, None] < s[:, None, :]).sum(2)  # noqa: E731
    assert (rank(placed)[:, cold] <= rank(weak)[:, cold]).mean() > 0.95


def test_chosen_cold_strength_is_reported_saved_and_kept_by_a_fixed_refit(shop, quick_flagship, tmp_path):
    split, _, emb = shop
    info = quick_flagship.fit_info
    assert info["cold_strength"] in (0.0, 0.25, 1.0)
    assert set(info["cold_strengths_valid"]) == {"0.0", "0.25", "1.0"}
    loaded = type(quick_flagship).load(quick_flagship.save(tmp_path / "m"))
    assert loaded._cold_strength == quick_flagship._cold_strength
    np.testing.assert_allclose(loaded.score(np.arange(5)), quick_flagship.score(np.arange(5)), rtol=1e-5, atol=1e-5)
    refit = make_recommender("sequential", {**FAST_SEQUENTIAL, "fixed_epochs": 1, "cold_strength": 0.25}).fit(
        split.train, item_embeddings=emb)
    assert refit.fit_info["cold_strength"] == 0.25 and refit.fit_info["cold_blend"]
    off = make_recommender("sequential", {**FAST_SEQUENTIAL, "fixed_epochs": 1, "cold_strength": 0.0}).fit(
        split.train, item_embeddings=emb)
    assert off._cold is None and not off.fit_info["cold_blend"]


def test_a_fit_out_of_time_skips_the_cold_strengths_it_cannot_afford(shop):
    """The time cap covers the cold-strength check too: past it, the blended strengths are not
    measured and the model keeps its own order (strength 0), saying which were skipped."""
    split, _, emb = shop
    model = make_recommender("sequential", {**FAST_SEQUENTIAL, "max_train_seconds": 1e-9}).fit(
        split.train, item_embeddings=emb, valid=split.valid)
    info = model.fit_info
    assert info["epochs_run"] == 1
    assert info["cold_strengths_skipped"] == [0.25, 1.0]
    assert info["cold_strengths_valid"] == {}  # nothing to compare strength 0 with: not measured either
    assert info["cold_strength"] == 0.0 and model._cold is None

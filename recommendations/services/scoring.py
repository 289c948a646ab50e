"""Scoring: every customer's top-K from a model version, with reasons, written before activation.

Two lists per customer: ``discover`` from the version's model (never what the customer bought)
and ``buy_again`` from the buy-again ranker saved in ``<artifact_path>/buy_again/`` (only what they
bought, by when they will need it again; skipped for versions trained without one). Scoring reads
each customer's current history from the CRM, so a re-score picks up events that arrived after
training. Customers are split into contiguous id ranges (shards); with a broker the
shards run as a Celery chord on the ``gpu`` queue and the chord's callback activates the version,
so the active pointer flips only after every shard has written its rows.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings

from crm.models import Customer, Feedback, Interaction, Item

from ..conf import recommendations_settings
from ..engine.batch_scoring import PackedHistories, score_batches, scorer_for
from ..engine.models import BUY_AGAIN_DIR, Recommender, load_buy_again, load_recommender, top_k
from ..models import ModelVersion, Recommendation
from ..reasons import buy_again_reason
from .bulk_write import RecommendationBlock, RecommendationWriter
from .embedding import item_embedding_matrix
from .partitions import recommendation_versions_prune, version_storage_attach
from .registry import model_version_activate

logger = logging.getLogger(__name__)

KIND_VERBS = {
    "purchase": "bought",
    "rating": "rated",
    "add_to_cart": "added to your cart",
    "wishlist": "saved",
    "click": "clicked on",
    "view": "viewed",
}
KIND_STRENGTH = {"purchase": 5, "rating": 4, "add_to_cart": 3, "wishlist": 2, "click": 1, "view": 0}
SIMILAR_ENOUGH = 0.55
HISTORY_LENGTH = 200
# The buy-again ranker sees at most this many of a customer's latest purchases (counts and intervals
# need the long history the sequence model does not).
PURCHASE_HISTORY_LENGTH = 2000


@dataclass
class LoadedVersion:
    model: Recommender
    item_ids: np.ndarray  # CRM item id of each model item index
    item_index: dict[int, int]
    embeddings: np.ndarray  # L2-normalised text embeddings, [n_items, dim] (zeros when missing)


@lru_cache(maxsize=4)
def _load(version_pk: int, artifact_path: str) -> LoadedVersion:
    """A version's model, loaded once per process (workers keep it between shards)."""
    model = load_recommender(artifact_path)
    item_ids = np.array([int(k) for k in model.item_keys], dtype=np.int64)
    embeddings = item_embedding_matrix(item_ids=item_ids.tolist())
    return LoadedVersion(model, item_ids, {int(i): n for n, i in enumerate(item_ids)}, embeddings)


def loaded_version(version: ModelVersion) -> LoadedVersion:
    return _load(version.pk, version.artifact_path)


@dataclass
class LoadedBuyAgain:
    ranker: Recommender  # engine.models.buy_again.BuyAgain
    item_ids: np.ndarray
    item_index: dict[int, int]


@lru_cache(maxsize=4)
def _load_buy_again(version_pk: int, artifact_path: str) -> LoadedBuyAgain | None:
    ranker = load_buy_again(artifact_path)
    if ranker is None:
        return None
    item_ids = np.array([int(k) for k in ranker.item_keys], dtype=np.int64)
    return LoadedBuyAgain(ranker, item_ids, {int(i): n for n, i in enumerate(item_ids)})


def loaded_buy_again(version: ModelVersion) -> LoadedBuyAgain | None:
    """The version's buy-again ranker, or None for versions trained without one (never cached, so a
    ranker saved later is picked up)."""
    if not version.artifact_path or not (Path(version.artifact_path) / BUY_AGAIN_DIR / "config.json").exists():
        return None
    return _load_buy_again(version.pk, version.artifact_path)


def scoreable_customers():
    """Customers who get a stored, personalised list: everyone who has not withdrawn consent."""
    return Customer.objects.filter(unsubscribed_at__isnull=True)


def customer_shards(*, shards: int | None = None) -> list[tuple[int, int]]:
    """Contiguous, inclusive customer id ranges of roughly equal size."""
    ids = list(scoreable_customers().order_by("id").values_list("id", flat=True))
    if not ids:
        return []
    if shards is None:
        shards = max(1, math.ceil(len(ids) / recommendations_settings().SCORE_SHARD_SIZE))
    size = math.ceil(len(ids) / max(1, shards))
    return [(ids[i], ids[min(i + size, len(ids)) - 1]) for i in range(0, len(ids), size)]


@dataclass
class ShardHistory:
    """What scoring needs of each customer's events, read in one pass (oldest first)."""

    recent: dict[int, list[tuple[int, str]]]  # (item_id, kind), the latest HISTORY_LENGTH: model input
    orders: dict[int, list[object]]  # each ``recent`` entry's order: its order id, else its timestamp
    done: dict[int, set[int]]  # items with an EXCLUDE_SEEN_KINDS event, over the whole history
    interacted: dict[int, set[int]]  # every item with any event, over the whole history
    purchases: dict[int, list[tuple[int, float]]]  # (item_id, unix ts) of purchases: buy-again input


def shard_history(lo: int, hi: int) -> ShardHistory:
    rows = (
        Interaction.objects.filter(customer_id__gte=lo, customer_id__lte=hi, excluded_from_training=False)
        .order_by("customer_id", "occurred_at", "id")
        .values_list("customer_id", "item_id", "kind", "occurred_at", "order_id")
    )
    done_kinds = set(recommendations_settings().EXCLUDE_SEEN_KINDS)
    recent: dict[int, list[tuple[int, str]]] = defaultdict(list)
    orders: dict[int, list[object]] = defaultdict(list)
    done: dict[int, set[int]] = defaultdict(set)
    interacted: dict[int, set[int]] = defaultdict(set)
    purchases: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for customer_id, item_id, kind, occurred_at, order_id in rows.iterator(chunk_size=20_000):
        recent[customer_id].append((item_id, kind))
        # the order key the training data groups by (engine.data.build_dataset): the order id, else the moment
        orders[customer_id].append(order_id or occurred_at.timestamp())
        interacted[customer_id].add(item_id)
        if kind in done_kinds:
            done[customer_id].add(item_id)
        if kind == Interaction.Kind.PURCHASE:
            purchases[customer_id].append((item_id, occurred_at.timestamp()))
    return ShardHistory(
        recent={c: h[-HISTORY_LENGTH:] for c, h in recent.items()},
        orders={c: o[-HISTORY_LENGTH:] for c, o in orders.items()},
        done=dict(done),
        interacted=dict(interacted),
        purchases={c: p[-PURCHASE_HISTORY_LENGTH:] for c, p in purchases.items()},
    )


def model_input(
    history: ShardHistory, customers: list[int], index: dict[int, int]
) -> tuple[list[list[int]], list[list]]:
    """(each customer's model item indices, oldest first; each one's order key), the catalogue's
    items only: what a model is served, orders included (a model trained on orders reads them)."""
    items, orders = [], []
    for cid in customers:
        lines = zip(history.recent.get(cid, []), history.orders.get(cid, []), strict=True)
        pairs = [(index[i], o) for (i, _), o in lines if i in index]
        items.append([i for i, _ in pairs])
        orders.append([o for _, o in pairs])
    return items, orders


def _histories(lo: int, hi: int) -> dict[int, list[tuple[int, str]]]:
    """(item_id, kind) per customer, oldest first, the latest HISTORY_LENGTH kept."""
    return shard_history(lo, hi).recent


REASON_HISTORY = 30  # a reason names one of the customer's latest this-many events
# reason kinds (codes of _reason_codes)
_RECENT, _NEW_SIMILAR, _NEW_IN_STORE, _BECAUSE, _POPULAR_HERE, _POPULAR, _TRENDING = range(7)
# "trending now": an item among the model's this-many best sellers of the moment (models that have
# them: trending, ease_trending), otherwise "popular with customers like you"
TRENDING_REASON_TOP = 100
_VERB_BY_STRENGTH = {s: KIND_VERBS.get(k, "viewed") for k, s in KIND_STRENGTH.items()}


def _reason_codes(
    items: np.ndarray,
    histories: list[list[tuple[int, str]]],
    countries: list[str],
    loaded: LoadedVersion,
    titles: dict[int, str],
    popular: dict[str, set[int]],
    slot_picks: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str]]:
    """One short, true reason per recommended item, for a batch: ``items`` int [B, k] (model item
    indices) of customers with ``histories`` (CRM (item_id, kind), oldest first) and ``countries``.
    Returns (codes int [B, k], reasons): row ``b``'s ``j``-th item's reason is ``reasons[codes[b, j]]``.

    Items the customer interacted with lately say so ("you viewed it recently"); new items (no
    training events) are "new, similar to X"; the cold items the model's cold slots chose for the
    customer (``slot_picks`` int [B, s], -1 = none: few events, text close to theirs) are "new in
    store, like X"; items whose text is close (cosine >=
    ``SIMILAR_ENOUGH``) to one of the customer's latest ``REASON_HISTORY`` items "because you bought
    X" (X: the most similar of them, the earliest on a tie); the rest are popular (in the customer's
    country when it is among the country's top sellers), "trending now" when the model ranks by what
    sells now (``trending_now``: trending, ease_trending) and the item is among its
    ``TRENDING_REASON_TOP`` of the moment. One batched product for the whole batch;
    strings are built once per distinct reason.
    """
    n, k = items.shape
    if n == 0 or k == 0:
        return np.zeros((n, k), np.int64), []
    width = max(1, max((len(h[-REASON_HISTORY:]) for h in histories), default=1))
    known = np.full((n, width), -1, np.int64)  # model index of each distinct recent item, first seen first
    strength = np.zeros((n, width), np.int64)  # its strongest kind (KIND_STRENGTH)
    for row, history in enumerate(histories):
        slots: dict[int, int] = {}
        for item_id, kind in history[-REASON_HISTORY:]:
            idx = loaded.item_index.get(item_id)
            if idx is None:
                continue
            slot = slots.setdefault(idx, len(slots))
            known[row, slot] = idx
            strength[row, slot] = max(strength[row, slot], KIND_STRENGTH.get(kind, 0))
    valid = known >= 0
    match = (items[:, :, None] == known[:, None, :]) & valid[:, None, :]
    recent = match.any(axis=2)
    recent_strength = np.take_along_axis(strength, match.argmax(axis=2), axis=1)
    emb = loaded.embeddings
    sims = np.empty((n, k, width), np.float32)
    for lo in range(0, n, 256):  # [256, k, dim] of item vectors at a time; einsum: no BLAS threads
        part = slice(lo, lo + 256)  # to wake for [k, dim] x [dim, width] products (4x less CPU measured)
        sims[part] = np.einsum("bkd,bwd->bkw", emb[items[part]], emb[np.maximum(known[part], 0)])
    sims[~np.broadcast_to(valid[:, None, :], sims.shape)] = -np.inf
    best = sims.argmax(axis=2)
    similarity = np.take_along_axis(sims, best[:, :, None], axis=2)[:, :, 0]
    anchor = np.take_along_axis(known, best, axis=1)
    anchor_strength = np.take_along_axis(strength, best, axis=1)
    has_known = valid.any(axis=1)[:, None]
    cold = loaded.model._item_pop[items] == 0
    item_ids = loaded.item_ids[items]
    country_list = sorted(set(countries))
    country_code = np.array([country_list.index(c) for c in countries], np.int64)[:, None]
    here = np.array([[int(i) in popular.get(c, ()) for i in row] for row, c in zip(item_ids, countries)],
                    bool).reshape(n, k)
    kind = np.where(here, _POPULAR_HERE, _POPULAR)
    trending_now = getattr(loaded.model, "trending_now", None)
    if trending_now is not None:
        kind = np.where((kind == _POPULAR) & np.isin(items, trending_now(TRENDING_REASON_TOP)), _TRENDING, kind)
    kind = np.where(has_known & ~cold & (similarity >= SIMILAR_ENOUGH), _BECAUSE, kind)
    if slot_picks is not None and slot_picks.size:
        picked = ((items[:, :, None] == slot_picks[:, None, :]) & (slot_picks[:, None, :] >= 0)).any(axis=2)
        kind = np.where(has_known & ~cold & picked, _NEW_IN_STORE, kind)
    kind = np.where(has_known & cold, _NEW_SIMILAR, kind)
    kind = np.where(recent, _RECENT, kind)
    verb = np.where(recent, recent_strength, np.where(kind == _BECAUSE, anchor_strength, 0))
    who = np.where((kind == _NEW_SIMILAR) | (kind == _NEW_IN_STORE) | (kind == _BECAUSE), anchor, -1)
    where = np.where(kind == _POPULAR_HERE, country_code, 0)
    keys = np.stack([kind, verb, who, np.broadcast_to(where, kind.shape)], axis=-1).reshape(-1, 4)
    distinct, codes = np.unique(keys, axis=0, return_inverse=True)
    reasons = []
    for r_kind, r_verb, r_who, r_where in distinct.tolist():
        title = titles.get(int(loaded.item_ids[r_who]), "something you viewed") if r_who >= 0 else ""
        if r_kind == _RECENT:
            reasons.append(f"you {_VERB_BY_STRENGTH.get(r_verb, 'viewed')} it recently")
        elif r_kind == _NEW_SIMILAR:
            reasons.append(f"new, similar to {title}"[:300])
        elif r_kind == _NEW_IN_STORE:
            reasons.append(f"new in store, like {title}"[:300])
        elif r_kind == _BECAUSE:
            reasons.append(f"because you {_VERB_BY_STRENGTH.get(r_verb, 'viewed')} {title}"[:300])
        elif r_kind == _POPULAR_HERE:
            country = country_list[r_where]
            reasons.append(f"popular in {country}" if country else "popular right now")
        elif r_kind == _TRENDING:
            reasons.append("trending now")
        else:
            reasons.append("popular with customers like you")
    return codes.reshape(n, k), reasons


def _available_mask(item_index: dict[int, int], n_items: int) -> np.ndarray:
    available = np.zeros(n_items, dtype=bool)
    for item_id in Item.objects.available().values_list("id", flat=True).iterator(chunk_size=20_000):
        if item_id in item_index:
            available[item_index[item_id]] = True
    return available


def _rejected(lo: int, hi: int) -> dict[int, set[int]]:
    """Items each customer gave negative feedback on: in no list."""
    rejected: dict[int, set[int]] = defaultdict(set)
    for customer_id, item_id in Feedback.objects.filter(
        customer_id__gte=lo, customer_id__lte=hi, kind__in=Feedback.NEGATIVE_KINDS, item__isnull=False
    ).values_list("customer_id", "item_id"):
        rejected[customer_id].add(item_id)
    return rejected


def _discover_blocks(
    version: ModelVersion, customers: list[tuple[int, str]], history: ShardHistory, rejected: dict[int, set[int]]
) -> list[RecommendationBlock]:
    """The discover list: the model's top-K of items the customer has not bought (nor rejected),
    one columnar block per scored batch (no model object per row)."""
    from ..selectors import popular_item_scores

    loaded = loaded_version(version)
    model, k, index = loaded.model, recommendations_settings().TOP_K, loaded.item_index
    histories = history.recent
    available = _available_mask(index, model.n_items)
    popular = {c: {i for i, _ in popular_item_scores(country=c, limit=100)} for c in {c for _, c in customers}}
    hist_items = {i for h in histories.values() for i, _ in h[-REASON_HISTORY:]}
    titles = dict(Item.objects.filter(id__in=hist_items).values_list("id", "title")) if hist_items else {}

    blocks: list[RecommendationBlock] = []
    todo = [(cid, country) for cid, country in customers if cid in histories]
    # histories and exclusions packed once; scored in large batches with top-k on the device
    packed = PackedHistories.from_lists(*model_input(history, [cid for cid, _ in todo], index))
    exclude = PackedHistories.from_lists([
        [index[i] for i in rejected.get(cid, set()) | history.done.get(cid, set()) if i in index]
        for cid, _ in todo])
    scorer = scorer_for(model, ann=recommendations_settings().ANN)
    for scored in score_batches(scorer, packed, min(k, model.n_items), exclude=exclude, allowed=available):
        batch = [todo[r] for r in scored.rows]
        items = scored.items.astype(np.int64)
        # the cold items the stage put in each customer's slots: the scorer's own choice, made once
        # for the scores and handed on with them (choosing again for the reasons doubled its cost)
        codes, reasons = _reason_codes(items, [histories.get(cid, []) for cid, _ in batch],
                                       [country for _, country in batch], loaded, titles, popular,
                                       scored.cold_picks)
        blocks.append(RecommendationBlock.from_top_k(
            Recommendation.List.DISCOVER, np.array([cid for cid, _ in batch], np.int64), loaded.item_ids[items],
            scored.scores, probabilities=model.probability(scored.scores), reason_codes=codes, reasons=reasons))
    return blocks


def _buy_again_blocks(
    version: ModelVersion,
    customers: list[tuple[int, str]],
    history: ShardHistory,
    rejected: dict[int, set[int]],
    now: float,
) -> list[RecommendationBlock]:
    """The buy-again list: the customer's own purchases, ranked by the version's buy-again ranker.

    Empty when the version has no ranker (trained before buy-again existed). Probabilities are
    stored only when the ranker was calibrated; a raw sigmoid of its score would mean nothing.
    """
    loaded = loaded_buy_again(version)
    if loaded is None:
        return []
    ranker, index, k = loaded.ranker, loaded.item_index, recommendations_settings().TOP_K
    available = _available_mask(index, ranker.n_items)
    calibrated = tuple(ranker.calibration) != (1.0, 0.0)
    blocks: list[RecommendationBlock] = []
    todo = [cid for cid, _ in customers if history.purchases.get(cid)]
    for start in range(0, len(todo), 256):
        batch = todo[start : start + 256]
        timed = [[(index[i], ts) for i, ts in history.purchases[cid] if i in index] for cid in batch]
        scores = np.asarray(ranker.score_timed_histories(timed, now), dtype=np.float32).copy()
        scores[:, ~available] = -np.inf
        for row, cid in enumerate(batch):
            scores[row, [index[i] for i in rejected.get(cid, ()) if i in index]] = -np.inf
        top_items, top_scores = top_k(scores, min(k, ranker.n_items))
        codes = np.zeros(top_items.shape, np.int64)
        reasons: dict[str, int] = {}
        for row in range(len(batch)):
            by_item: dict[int, list[tuple[int, float]]] = defaultdict(list)
            for idx, ts in timed[row]:  # explain() scans the history it gets: give it one item's
                by_item[idx].append((idx, ts))
            for col in np.flatnonzero(np.isfinite(top_scores[row])).tolist():
                idx = int(top_items[row, col])
                why = ranker.explain(by_item[idx], idx, now)
                reason = buy_again_reason(times_bought=int(why["times_bought"]),
                                          days_since_last=float(why["days_since_last"]),
                                          interval_days=why.get("interval_days"))
                codes[row, col] = reasons.setdefault(reason, len(reasons))
        blocks.append(RecommendationBlock.from_top_k(
            Recommendation.List.BUY_AGAIN, np.array(batch, np.int64), loaded.item_ids[top_items], top_scores,
            probabilities=ranker.probability(top_scores) if calibrated else None,
            reason_codes=codes, reasons=list(reasons)))
    return blocks


def model_version_score_shard(*, version: ModelVersion, lo: int, hi: int, now: float | None = None) -> int:
    """Score customers with ids in [lo, hi] and store both lists; idempotent per (version, shard).

    ``now`` (unix seconds, default: the current time) is when the buy-again ranker measures how
    long ago each product was bought.
    """
    customers = list(scoreable_customers().filter(id__range=(lo, hi)).order_by("id").values_list("id", "country"))
    history = shard_history(lo, hi)
    rejected = _rejected(lo, hi)
    discover = _discover_blocks(version, customers, history, rejected)
    buy_again = _buy_again_blocks(version, customers, history, rejected, time.time() if now is None else now)
    # every database read is done: the COPY holds the connection from here on
    with RecommendationWriter(version.pk, lo, hi, threaded=False) as writer:
        for block in discover + buy_again:
            writer.put(block)
    n_discover = sum(len(b) for b in discover)
    logger.info(
        "v%s: scored customers %s..%s, %d discover + %d buy-again rows",
        version.pk, lo, hi, n_discover, writer.rows - n_discover,
    )
    return writer.rows


def model_version_scored(*, version: ModelVersion, activate: bool) -> ModelVersion:
    """All shards are written: mark the version ready and, if asked, make it the active one."""
    version_storage_attach(version.pk)
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.READY)
    version.refresh_from_db()
    if activate:
        version = model_version_activate(version=version)
        recommendation_versions_prune()
    return version


def model_version_score(
    *,
    version: ModelVersion,
    activate: bool,
    shards: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ModelVersion | None:
    """Score every customer with ``version`` in shards, then (optionally) activate it.

    Eager mode scores the shards in turn and returns the activated version; with a broker the
    shards run in parallel as a chord and this returns None at once (the callback activates).
    """
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.SCORING)
    ranges = customer_shards(shards=shards)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        for done, (lo, hi) in enumerate(ranges, start=1):
            model_version_score_shard(version=version, lo=lo, hi=hi)
            if progress is not None:
                progress(done, len(ranges))
        return model_version_scored(version=version, activate=activate)
    from crm.jobs import enqueue

    enqueue("recommendations.score_shards", version.pk, ranges, activate)
    return None


def model_version_rescore(
    *,
    version: ModelVersion | None = None,
    shards: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ModelVersion | None:
    """Score current histories with an existing model as a new version, then activate it.

    A new version row (same artefact) is scored in full before the pointer flips, so readers never
    see a half-rewritten list.
    """
    from ..selectors import model_version_active

    source = version or model_version_active()
    if source is None:
        raise ValueError("There is no active model version to score with; run `manage.py train` first.")
    clone = ModelVersion.objects.create(
        algorithm=source.algorithm,
        params=source.params,
        data_stats=source.data_stats,
        metrics=source.metrics,
        artifact_path=source.artifact_path,
        device=source.device,
        timings=source.timings,
        status=ModelVersion.Status.SCORING,
        notes=f"re-scored from v{source.pk}",
    )
    return model_version_score(version=clone, activate=True, shards=shards, progress=progress)

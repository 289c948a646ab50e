"""Interactions -> integer-indexed arrays, cleaning, and evaluation splits.

Why: every model and metric works on the same compact representation (parallel
numpy arrays of user index, item index, timestamp and weight), so the host
(Django) only has to produce an iterable of plain tuples once. Cleaning returns a
report of what was dropped so an operator can see *why* a training set shrank.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

# Relative strength of each interaction kind as an implicit-feedback weight: the one definition
# (the app's ``RECOMMENDATIONS["KIND_WEIGHTS"]`` default refers to it).
# "rating" is special-cased: its weight comes from the value (see kind_weight).
KIND_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 1.5,
    "add_to_cart": 3.0,
    "wishlist": 2.0,
    "purchase": 5.0,
    "rating": 2.0,  # used only when a rating has no value
}
DEFAULT_WEIGHT = 1.0
RATING_SCALE = 5.0

Event = tuple[str, str, str, float, float | None] | tuple[str, str, str, float, float | None, str]


def kind_weight(kind: str, value: float | None, weights: Mapping[str, float]) -> float:
    """Weight of one event. Ratings are positive interactions weighted 1..5 by value."""
    if kind == "rating" and value is not None:
        v = min(max(float(value), 0.0), RATING_SCALE)
        return v / RATING_SCALE * 4.0 + 1.0
    return float(weights.get(kind, DEFAULT_WEIGHT))


@dataclass
class Dataset:
    """Parallel arrays of interactions plus the external keys of each index."""

    user_idx: np.ndarray  # int64 [n_events]
    item_idx: np.ndarray  # int64 [n_events]
    ts: np.ndarray  # float64 seconds [n_events]
    weight: np.ndarray  # float32 [n_events]
    user_keys: list[str]
    item_keys: list[str]
    # int64 [n_events]: the order (basket) of each event. One basket = same customer + same order
    # id, or (no order id) same customer + same timestamp. None: derived from (customer, timestamp).
    basket: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.user_idx = np.asarray(self.user_idx, dtype=np.int64)
        self.item_idx = np.asarray(self.item_idx, dtype=np.int64)
        self.ts = np.asarray(self.ts, dtype=np.float64)
        self.weight = np.asarray(self.weight, dtype=np.float32)
        if self.basket is None:
            self.basket = baskets_from_time(self.user_idx, self.ts)
        self.basket = np.asarray(self.basket, dtype=np.int64)

    @property
    def n_users(self) -> int:
        return len(self.user_keys)

    @property
    def n_items(self) -> int:
        return len(self.item_keys)

    @property
    def n_events(self) -> int:
        return int(self.user_idx.shape[0])

    def time_order(self) -> np.ndarray:
        """Event order sorted by (user, ts); stable, so ties keep input order."""
        return np.lexsort((self.ts, self.user_idx))

    def basket_order(self) -> np.ndarray:
        """Event order sorted by (user, basket time, basket, item): rows inside a basket are in a
        canonical order, so nothing downstream depends on how an export ordered an order's lines."""
        return np.lexsort((self.item_idx, self.basket, self.basket_time()[self.basket_codes()], self.user_idx))

    def basket_codes(self) -> np.ndarray:
        """Dense 0..n_baskets-1 code of each event's basket."""
        return np.unique(self.basket, return_inverse=True)[1].reshape(-1)

    def basket_time(self) -> np.ndarray:
        """Time of each basket (by dense code): its earliest event."""
        codes = self.basket_codes()
        out = np.full(int(codes.max()) + 1 if len(codes) else 0, np.inf)
        np.minimum.at(out, codes, self.ts)
        return out

    def basket_sequences(self) -> list[list[np.ndarray]]:
        """Per user, their baskets oldest first, each an array of distinct item indices."""
        order = self.basket_order()
        users, codes, items = self.user_idx[order], self.basket_codes()[order], self.item_idx[order]
        out: list[list[np.ndarray]] = [[] for _ in range(self.n_users)]
        if not len(order):
            return out
        starts = np.flatnonzero(np.r_[True, (codes[1:] != codes[:-1]) | (users[1:] != users[:-1])])
        ends = np.r_[starts[1:], len(order)]
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            out[users[s]].append(np.unique(items[s:e]))
        return out

    def sequences(self) -> list[np.ndarray]:
        """Per-user item indices sorted by time (stable); empty array for users without events."""
        order = self.time_order()
        items = self.item_idx[order]
        counts = np.bincount(self.user_idx, minlength=self.n_users)
        return np.split(items, np.cumsum(counts)[:-1])

    def csr(self, binary: bool = False) -> sp.csr_matrix:
        """User x item matrix of summed weights (or 1.0 per seen pair if binary)."""
        data = np.ones_like(self.weight) if binary else self.weight
        m = sp.csr_matrix(
            (data, (self.user_idx, self.item_idx)),
            shape=(self.n_users, self.n_items),
            dtype=np.float32,
        )
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        return m

    def item_counts(self) -> np.ndarray:
        """Number of events per item (int64 [n_items])."""
        return np.bincount(self.item_idx, minlength=self.n_items).astype(np.int64)

    def user_counts(self) -> np.ndarray:
        return np.bincount(self.user_idx, minlength=self.n_users).astype(np.int64)

    def subset(self, mask: np.ndarray) -> Dataset:
        """The events selected by ``mask`` with the SAME index spaces."""
        return Dataset(
            self.user_idx[mask], self.item_idx[mask], self.ts[mask], self.weight[mask],
            self.user_keys, self.item_keys, self.basket[mask],
        )

    def with_events(self, pairs: np.ndarray, ts: np.ndarray, weight: np.ndarray) -> Dataset:
        """A copy with extra (user, item) events appended (same index spaces); each appended
        event is a basket of its own unless it shares customer and timestamp with another one."""
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        ts = np.asarray(ts, dtype=np.float64)
        start = int(self.basket.max()) + 1 if len(self.basket) else 0
        return Dataset(
            np.concatenate([self.user_idx, pairs[:, 0]]),
            np.concatenate([self.item_idx, pairs[:, 1]]),
            np.concatenate([self.ts, ts]),
            np.concatenate([self.weight, np.asarray(weight, dtype=np.float32)]),
            self.user_keys, self.item_keys,
            np.concatenate([self.basket, start + baskets_from_time(pairs[:, 0], ts)]),
        )


def baskets_from_time(user_idx: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Basket id per event when there are no order ids: same customer + same timestamp."""
    user_idx = np.asarray(user_idx, dtype=np.int64)
    if not len(user_idx):
        return np.zeros(0, np.int64)
    pairs = np.stack([user_idx.astype(np.float64), np.asarray(ts, dtype=np.float64)], axis=1)
    return np.unique(pairs, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


@dataclass
class CleaningReport:
    """How many input rows each cleaning rule dropped, and how many were kept."""

    n_input: int = 0
    duplicates: int = 0
    invalid: int = 0
    inactive_items: int = 0
    bot_users: int = 0
    bot_events: int = 0
    min_user_events: int = 0
    min_item_events: int = 0
    filter_rounds: int = 0
    kept: int = 0
    n_users: int = 0
    n_items: int = 0
    n_items_with_events: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def group_orders(items: Sequence[int], keys: Sequence[object]) -> list[list[int]]:
    """A history's lines (oldest first) grouped into orders: one list per order key (the order id,
    or the timestamp when there is none), in the order of each order's first line, as
    :meth:`Dataset.basket_sequences` groups the training data. Lines of one order written apart
    (two orders in the same minute) come together."""
    if len(items) != len(keys):
        raise ValueError(f"{len(items)} items but {len(keys)} order keys.")
    grouped: dict[object, list[int]] = {}
    for item, key in zip(items, keys, strict=True):
        grouped.setdefault(key, []).append(int(item))
    return list(grouped.values())


def build_dataset(
    events: Iterable[Event],
    *,
    kind_weights: Mapping[str, float] | None = None,
    allowed_items: set[str] | None = None,
    min_user_events: int = 1,
    min_item_events: int = 1,
    max_user_events: int | None = None,
    item_keys: Sequence[str] | None = None,
) -> tuple[Dataset, CleaningReport]:
    """Clean raw events and index them.

    ``events`` yields ``(user_key, item_key, kind, ts_seconds, value)`` or the same with a sixth
    field, the order id (empty string or None: no order id; then same customer + same timestamp
    is one order). Rules, in order:
    rows with a missing user/item/ts are ``invalid``; exact duplicates (same user, item,
    kind, ts) are dropped; items outside ``allowed_items`` (or outside ``item_keys`` when
    given) are ``inactive_items``; users with more than ``max_user_events`` events are
    treated as bots and dropped entirely; then users and items under the minimum counts
    are removed repeatedly until nothing changes (removing a user can push an item under
    its minimum and vice versa).

    If ``item_keys`` is given the item index space is exactly that list, so catalogue
    items nobody touched still get an index and can be scored from their text.
    Users are indexed in sorted key order; items (without ``item_keys``) too.
    """
    weights = dict(KIND_WEIGHTS)
    if kind_weights:
        weights.update(kind_weights)
    catalogue = None if item_keys is None else {str(k) for k in item_keys}
    allowed = None if allowed_items is None else {str(k) for k in allowed_items}
    report = CleaningReport()
    seen: set[tuple[str, str, str, float]] = set()
    users: list[str] = []
    items: list[str] = []
    tss: list[float] = []
    ws: list[float] = []
    orders: list[str] = []
    for row in events:
        report.n_input += 1
        user, item, kind, ts, value = row[:5]
        order_id = row[5] if len(row) > 5 else None
        if user is None or item is None or ts is None:
            report.invalid += 1
            continue
        user, item, kind, ts = str(user), str(item), str(kind), float(ts)
        key = (user, item, kind, ts)
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        if (allowed is not None and item not in allowed) or (
            catalogue is not None and item not in catalogue
        ):
            report.inactive_items += 1
            continue
        users.append(user)
        items.append(item)
        tss.append(ts)
        ws.append(kind_weight(kind, value, weights))
        # "o:" and "t:" namespaces: an order id can never collide with a timestamp key
        orders.append(f"o:{order_id}" if order_id not in (None, "") else f"t:{ts!r}")

    u = np.array(users, dtype=object)
    i = np.array(items, dtype=object)
    keep = np.ones(len(users), dtype=bool)
    if max_user_events is not None and len(users):
        counts = Counter(users)
        bots = {k for k, c in counts.items() if c > max_user_events}
        report.bot_users = len(bots)
        if bots:
            is_bot = np.fromiter((x in bots for x in users), bool, len(users))
            report.bot_events = int(is_bot.sum())
            keep &= ~is_bot

    # Iterate the minimum-count filters to a fixed point.
    if len(users):
        _, u_codes = np.unique(u, return_inverse=True)
        _, i_codes = np.unique(i, return_inverse=True)
        while True:
            report.filter_rounds += 1
            changed = False
            uc = np.bincount(u_codes[keep], minlength=u_codes.max() + 1)
            drop = keep & (uc[u_codes] < min_user_events)
            if drop.any():
                report.min_user_events += int(drop.sum())
                keep &= ~drop
                changed = True
            ic = np.bincount(i_codes[keep], minlength=i_codes.max() + 1)
            drop = keep & (ic[i_codes] < min_item_events)
            if drop.any():
                report.min_item_events += int(drop.sum())
                keep &= ~drop
                changed = True
            if not changed:
                break

    u, i = u[keep], i[keep]
    basket_keys = np.array(orders, dtype=object)[keep] if len(orders) else np.zeros(0, dtype=object)
    ts_arr = np.asarray(tss, dtype=np.float64)[keep]
    w_arr = np.asarray(ws, dtype=np.float32)[keep]
    user_keys = sorted(set(u.tolist()))
    if item_keys is not None:
        ikeys = [str(k) for k in item_keys]
    else:
        ikeys = sorted(set(i.tolist()))
    u_index = {k: n for n, k in enumerate(user_keys)}
    i_index = {k: n for n, k in enumerate(ikeys)}
    uidx = np.fromiter((u_index[x] for x in u), np.int64, len(u))
    if len(u):
        _, bcodes = np.unique(basket_keys.astype(str), return_inverse=True)
        basket = np.unique(np.stack([uidx, bcodes.reshape(-1)], 1), axis=0, return_inverse=True)[1].reshape(-1)
    else:
        basket = np.zeros(0, np.int64)
    ds = Dataset(
        uidx,
        np.fromiter((i_index[x] for x in i), np.int64, len(i)),
        ts_arr, w_arr, user_keys, ikeys, basket,
    )
    report.kept = ds.n_events
    report.n_users = ds.n_users
    report.n_items = ds.n_items
    report.n_items_with_events = int((ds.item_counts() > 0).sum())
    return ds, report


@dataclass
class Split:
    """An evaluation split over one index space.

    ``train`` is what a model is fit on for model selection; ``valid`` and ``test``
    are ``[n, 2]`` int64 arrays of (user_idx, item_idx) targets. ``train_valid`` is
    train plus the validation events: fit on it before scoring ``test``, so the test
    prediction sees everything that happened before the test basket.

    With the basket protocol (the default) ``valid``/``test`` are the DISCOVER targets (items of
    the held-out basket new to the customer) and ``valid_repeat``/``test_repeat`` the BUY-AGAIN
    targets (items of the held-out basket the customer bought before). ``valid_now``/``test_now``
    hold, per user index, the time of their held-out basket (nan: no target): the moment a
    buy-again list is scored for.
    """

    train: Dataset
    valid: np.ndarray
    test: np.ndarray
    train_valid: Dataset
    info: dict[str, Any] = field(default_factory=dict)
    valid_repeat: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    test_repeat: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    valid_now: np.ndarray | None = None
    test_now: np.ndarray | None = None

    def targets(self, task: str, part: str = "test") -> np.ndarray:
        """Targets of ``task`` ("discover" | "buy_again") in ``part`` ("valid" | "test")."""
        if task == "buy_again":
            return self.valid_repeat if part == "valid" else self.test_repeat
        return self.valid if part == "valid" else self.test


def _pairs(ds: Dataset, idx: np.ndarray) -> np.ndarray:
    return np.stack([ds.user_idx[idx], ds.item_idx[idx]], axis=1).astype(np.int64).reshape(-1, 2)


def _last_per_user(ds: Dataset, order: np.ndarray, min_events: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into ds arrays) of each user's last and second-to-last event,
    for users with at least ``min_events`` events in ``order`` (sorted by user, ts)."""
    users = ds.user_idx[order]
    if len(users) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    is_last = np.r_[users[1:] != users[:-1], True]
    last_pos = np.flatnonzero(is_last)
    starts = np.r_[0, last_pos[:-1] + 1]
    counts = last_pos - starts + 1
    ok = counts >= min_events
    return order[last_pos[ok]], order[last_pos[ok] - 1]


def _basket_rank_from_end(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(rank of each event's basket counted from the user's last basket: 0 = last, 1 = the one
    before, ...; number of baskets of each event's user)."""
    if not ds.n_events:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    codes = ds.basket_codes()
    btime = ds.basket_time()
    n_b = len(btime)
    b_user = np.zeros(n_b, np.int64)
    b_user[codes] = ds.user_idx
    border = np.lexsort((np.arange(n_b), btime, b_user))  # baskets by (user, time, id)
    bu = b_user[border]
    last = np.r_[bu[1:] != bu[:-1], True]
    last_pos = np.flatnonzero(last)
    # position of each basket inside its user's run, counted from the end
    run_end = np.repeat(last_pos, np.diff(np.r_[-1, last_pos]))
    from_end = np.empty(n_b, np.int64)
    from_end[border] = run_end - np.arange(n_b)
    per_user = np.bincount(bu, minlength=ds.n_users)
    return from_end[codes], per_user[ds.user_idx]


def _targets(ds: Dataset, held: np.ndarray, history: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (user, item) of the held-out events split into (new, repeat) w.r.t. ``history``
    events; plus the time of each user's held-out basket (nan where none)."""
    hist_keys = np.unique(ds.user_idx[history] * ds.n_items + ds.item_idx[history])
    keys = np.unique(ds.user_idx[held] * ds.n_items + ds.item_idx[held])
    repeat = np.isin(keys, hist_keys)
    pairs = np.stack([keys // ds.n_items, keys % ds.n_items], axis=1).astype(np.int64).reshape(-1, 2)
    now = np.full(ds.n_users, np.nan)
    if held.any():
        np.fmin.at(now, ds.user_idx[held], ds.ts[held])
    return pairs[~repeat], pairs[repeat], now


def last_basket_holdout(ds: Dataset, max_users: int, rng: np.random.Generator) -> tuple[Dataset, np.ndarray]:
    """``ds`` without the last basket of up to ``max_users`` random customers who have at least
    two, and the items of those baskets new to the customer as ``[n, 2]`` (user, item) targets: a
    model's own early-stopping set, so that the caller's validation targets stay unseen by it."""
    from_end, n_baskets = _basket_rank_from_end(ds)
    eligible = np.unique(ds.user_idx[n_baskets >= 2])
    chosen = np.zeros(ds.n_users, dtype=bool)
    if len(eligible):
        chosen[rng.choice(eligible, min(len(eligible), max_users), replace=False)] = True
    held = chosen[ds.user_idx] & (from_end == 0) & (n_baskets >= 2)
    new, _, _ = _targets(ds, held, ~held)
    return ds.subset(~held), new


def leave_last_out_split(ds: Dataset, min_events: int = 3, unit: str = "basket") -> Split:
    """Temporal leave-last-out.

    ``unit="basket"`` (the default, leak-free): per user with at least ``min_events`` baskets,
    the last basket is the test basket and the one before it the validation basket. Every item of
    a held-out basket is a target, none of its basket-mates is in the input, and the targets are
    split into new (discover) and repeat (buy-again) items against everything before the basket.

    ``unit="line"`` is the old protocol, kept only to measure the within-order leak: per user,
    last event = test, second-to-last = valid, ties broken by input order, so the target's
    order-mates sit in the input history.
    """
    if unit == "line":
        order = ds.time_order()
        test_idx, valid_idx = _last_per_user(ds, order, min_events)
        train_mask = np.ones(ds.n_events, dtype=bool)
        train_mask[test_idx] = False
        tv_mask = train_mask.copy()
        train_mask[valid_idx] = False
        return Split(
            train=ds.subset(train_mask),
            valid=_pairs(ds, valid_idx),
            test=_pairs(ds, test_idx),
            train_valid=ds.subset(tv_mask),
            info={"protocol": "leave_last_out_line", "min_events": min_events},
        )
    if unit != "basket":
        raise ValueError(f"unit must be 'basket' or 'line', not {unit!r}.")
    from_end, n_baskets = _basket_rank_from_end(ds)
    eligible = n_baskets >= min_events
    test_mask = eligible & (from_end == 0)
    valid_mask = eligible & (from_end == 1)
    train_mask = ~(test_mask | valid_mask)
    tv_mask = ~test_mask
    valid_new, valid_rep, valid_now = _targets(ds, valid_mask, train_mask)
    test_new, test_rep, test_now = _targets(ds, test_mask, tv_mask)
    return Split(
        train=ds.subset(train_mask),
        valid=valid_new,
        test=test_new,
        train_valid=ds.subset(tv_mask),
        info={"protocol": "leave_last_basket_out", "min_baskets": min_events},
        valid_repeat=valid_rep,
        test_repeat=test_rep,
        valid_now=valid_now,
        test_now=test_now,
    )


def time_window_split(ds: Dataset, start_ts: float, window_seconds: float) -> Split:
    """Time-window protocol: train on events before ``start_ts`` (T); the test basket of each
    user is their FIRST basket in ``[T, T + window)``; its new items are the discover targets and
    its repeat items the buy-again targets.

    Only users with history before T get test targets (cold users are served by
    ``score_histories``). Validation is the last pre-T basket of users with at least 3 pre-T
    baskets, and ``train`` excludes it; ``train_valid`` is every pre-T event.
    """
    before = ds.ts < start_ts
    pre = ds.subset(before)
    from_end, n_baskets = _basket_rank_from_end(pre)
    valid_mask = (n_baskets >= 3) & (from_end == 0)
    valid_new, valid_rep, valid_now = _targets(pre, valid_mask, ~valid_mask)
    # first basket in the window, per user with history
    in_window = (ds.ts >= start_ts) & (ds.ts < start_ts + window_seconds)
    has_history = np.bincount(pre.user_idx, minlength=ds.n_users) > 0
    test_mask = np.zeros(ds.n_events, bool)
    win = np.flatnonzero(in_window & has_history[ds.user_idx])
    if len(win):
        first_ts = np.full(ds.n_users, np.inf)
        np.minimum.at(first_ts, ds.user_idx[win], ds.ts[win])
        first_basket = np.full(ds.n_users, -1, np.int64)
        at_first = win[ds.ts[win] == first_ts[ds.user_idx[win]]]
        first_basket[ds.user_idx[at_first]] = ds.basket[at_first]  # one basket per user
        test_mask[win] = ds.basket[win] == first_basket[ds.user_idx[win]]
    test_new, test_rep, test_now = _targets(ds, test_mask, before)
    return Split(
        train=pre.subset(~valid_mask),
        valid=valid_new,
        test=test_new,
        train_valid=pre,
        info={"protocol": "time_window", "start_ts": start_ts, "window_seconds": window_seconds},
        valid_repeat=valid_rep,
        test_repeat=test_rep,
        valid_now=valid_now,
        test_now=test_now,
    )

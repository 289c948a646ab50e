import numpy as np
import pytest

from recommendations.engine.data import (
    build_dataset,
    kind_weight,
    leave_last_out_split,
    time_window_split,
)

EVENTS = [
    # user, item, kind, ts, value
    ("alice", "a", "view", 1.0, None),
    ("alice", "a", "view", 1.0, None),  # exact duplicate
    ("alice", "b", "purchase", 2.0, None),
    ("alice", "c", "click", 3.0, None),
    ("alice", "d", "view", 4.0, None),
    ("bob", "a", "view", 1.0, None),
    ("bob", "b", "rating", 5.0, 5.0),
    ("bob", "zz", "view", 6.0, None),  # inactive item
    ("carol", "e", "view", 1.0, None),  # carol only touches a rare item
    ("dave", "b", "view", 2.0, None),
    ("dave", "c", "view", 3.0, None),
]


def test_cleaning_report_counts_each_rule_and_iterates_min_counts():
    """Duplicate and inactive rows are dropped; with min 2 events per user and per item,
    carol (1 event, item e) and alice's single event on item d go: 11 - 4 = 7 kept."""
    # when
    ds, report = build_dataset(
        EVENTS, allowed_items={"a", "b", "c", "d", "e"}, min_user_events=2, min_item_events=2
    )
    # then
    r = report.as_dict()
    assert r["n_input"] == 11
    assert r["duplicates"] == 1
    assert r["inactive_items"] == 1
    assert r["min_user_events"] == 1  # carol
    assert r["min_item_events"] == 1  # alice's d (item e already left with carol)
    assert r["kept"] == ds.n_events == 7
    assert ds.user_keys == ["alice", "bob", "dave"]
    assert ds.item_keys == ["a", "b", "c"]


def test_min_count_filter_reaches_a_fixed_point():
    """Dropping item q leaves u2 with one event; dropping u2 leaves y with one; dropping y
    leaves u3 with one: three rounds until only u4 and u5 (items z, w) remain."""
    events = [("u2", "y", "view", 2, None), ("u3", "y", "view", 1, None), ("u3", "z", "view", 2, None),
              ("u4", "z", "view", 1, None), ("u4", "w", "view", 2, None), ("u5", "w", "view", 1, None),
              ("u5", "z", "view", 3, None), ("u2", "q", "view", 1, None)]
    ds, report = build_dataset(events, min_user_events=2, min_item_events=2)
    assert set(ds.item_keys) == {"z", "w"}
    assert set(ds.user_keys) == {"u4", "u5"}
    assert report.filter_rounds >= 3
    assert report.kept == 4


def test_item_keys_fix_the_item_index_space_including_untouched_items():
    ds, report = build_dataset(EVENTS, item_keys=["a", "b", "c", "d", "new"])
    assert ds.item_keys == ["a", "b", "c", "d", "new"]
    assert ds.item_counts().tolist()[-1] == 0
    assert report.inactive_items == 2  # zz and e are not in the catalogue


def test_kind_weights_and_ratings_are_positive():
    assert kind_weight("purchase", None, {"purchase": 5.0}) == 5.0
    assert kind_weight("rating", 5.0, {}) == 5.0
    assert kind_weight("rating", 0.5, {}) == pytest.approx(1.4)
    assert kind_weight("unknown", None, {}) == 1.0


def test_sequences_and_csr():
    ds, _ = build_dataset(EVENTS)
    seqs = ds.sequences()
    alice = ds.user_keys.index("alice")
    assert [ds.item_keys[i] for i in seqs[alice]] == ["a", "b", "c", "d"]
    m = ds.csr()
    assert m.shape == (ds.n_users, ds.n_items)
    assert m[alice, ds.item_keys.index("b")] == pytest.approx(5.0)


def test_leave_last_out_split():
    """Users with >= 3 events: last -> test, second-to-last -> valid; others train only."""
    ds, _ = build_dataset(EVENTS)
    split = leave_last_out_split(ds)
    key = lambda pairs: sorted((ds.user_keys[u], ds.item_keys[i]) for u, i in pairs)  # noqa: E731
    assert key(split.test) == [("alice", "d"), ("bob", "zz")]
    assert key(split.valid) == [("alice", "c"), ("bob", "b")]
    assert split.train.n_events == ds.n_events - 4
    assert split.train_valid.n_events == ds.n_events - 2
    assert split.train.n_items == ds.n_items and split.train.n_users == ds.n_users


def test_time_window_split_targets_first_event_in_window():
    ds, _ = build_dataset(EVENTS)
    split = time_window_split(ds, start_ts=3.0, window_seconds=2.0)
    pairs = sorted((ds.user_keys[u], ds.item_keys[i]) for u, i in split.test)
    # alice: first in [3, 5) is c; dave: c at 3; bob's events at 5, 6 are outside; carol has no window event
    assert pairs == [("alice", "c"), ("dave", "c")]
    assert np.all(split.train_valid.ts < 3.0)

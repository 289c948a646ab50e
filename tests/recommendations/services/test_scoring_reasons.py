"""The reasons stored with a discover list, computed for a whole scored batch at once."""

import numpy as np

from recommendations.engine.data import build_dataset
from recommendations.engine.models import make_recommender
from recommendations.services.scoring import LoadedVersion, _reason_codes

# item index -> CRM id 101..105; item 102 has no training event (new); 101 and 102 share a text
EMBEDDINGS = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.6, 0.8, 0]], np.float32)
PURCHASES = {"101": 5, "103": 3, "104": 2, "105": 1}
TITLES = {i: f"T{i}" for i in range(101, 106)}


def _loaded(algorithm: str = "popularity", params: dict | None = None) -> LoadedVersion:
    events = [(f"c{n}", item, "purchase", float(n), None) for item, count in PURCHASES.items() for n in range(count)]
    ds, _ = build_dataset(events, item_keys=[str(i) for i in range(101, 106)])
    model = make_recommender(algorithm, params or {}).fit(ds)
    item_ids = np.arange(101, 106)
    return LoadedVersion(model, item_ids, {int(i): n for n, i in enumerate(item_ids)}, EMBEDDINGS)


def test_each_reason_says_why_the_item_is_on_that_customers_list():
    histories = [
        [(101, "purchase"), (103, "view")],  # DE
        [(999, "purchase")],  # an item the model does not know: nothing to compare with
        [(101, "purchase"), (102, "add_to_cart"), (104, "view"), (104, "purchase")],
    ]
    items = np.array([[1, 2, 3, 4], [0, 2, 0, 2], [4, 3, 1, 0]])
    codes, reasons = _reason_codes(items, histories, ["DE", "", "FR"], _loaded(), TITLES,
                                   {"DE": {104}, "": {101}, "FR": set()})
    got = [[reasons[c] for c in row] for row in codes]
    assert got[0] == ["new, similar to T101", "you viewed it recently", "popular in DE", "because you viewed T103"]
    assert got[1] == ["popular right now", "popular with customers like you"] * 2
    # the strongest kind counts (bought after viewing); equally similar anchors: the earliest one
    assert got[2] == ["because you bought T101", "you bought it recently", "you added to your cart it recently",
                      "you bought it recently"]
    assert len(reasons) == len(set(reasons))  # one entry per distinct reason


def test_a_list_that_ranks_by_what_sells_now_says_trending_now():
    """ease_trending (and trending): an item among the model's sellers of the moment that nothing
    else explains is "trending now"; a country's top seller keeps its reason, an item nobody bought
    is not trending."""
    items = np.array([[0, 1, 3]])  # 101 (a top seller here), 102 (never bought), 104
    history, popular = [[(999, "purchase")]], {"": {101}}
    for algorithm, params, expected in (
            ("popularity", {}, ["popular right now", "popular with customers like you",
                                "popular with customers like you"]),
            ("ease_trending", {"trend_weight": 0.5, "half_life_days": 7.0, "l2": 1.0},
             ["popular right now", "popular with customers like you", "trending now"]),
            ("trending", {"half_life_days": 7.0}, ["popular right now", "popular with customers like you",
                                                   "trending now"])):
        codes, reasons = _reason_codes(items, history, [""], _loaded(algorithm, params), TITLES, popular)
        assert [reasons[c] for c in codes[0]] == expected, algorithm


def test_an_empty_batch_has_no_reasons():
    codes, reasons = _reason_codes(np.zeros((0, 10), np.int64), [], [], _loaded(), TITLES, {})
    assert codes.shape == (0, 10) and reasons == []

"""The buy-again reason texts."""
import pytest

from recommendations.reasons import buy_again_reason


@pytest.mark.parametrize(("times", "since", "interval", "text"), [
    (4, 10, 21.0, "you buy this about every 3 weeks"),
    (3, 2, 7.2, "you buy this about every 7 days"),
    (5, 0.5, 1.1, "you buy this about every day"),
    (2, 40, 60.0, "you buy this about every 2 months"),
    (2, 40, 30.0, "you buy this about every 4 weeks"),
    (4, 10, None, "you bought this 4 times, last 10 days ago"),
    (1, 10, 21.0, "you bought this 10 days ago"),  # an item's typical interval is not *your* habit
    (1, 0.2, None, "you bought this today"),
    (2, 1.5, None, "you bought this 2 times, last yesterday"),
    (1, 95, None, "you bought this 3 months ago"),
    (3, 20, float("nan"), "you bought this 3 times, last 2 weeks ago"),
])
def test_buy_again_reason(times, since, interval, text):
    assert buy_again_reason(times_bought=times, days_since_last=since, interval_days=interval) == text

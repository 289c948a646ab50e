"""Reason texts of the buy-again list: "you buy this about every 3 weeks".

Pure functions (no queries), shared by scoring (from ``BuyAgain.explain``) and by the live
buy-again fallback of ``selectors.recommendation_list_for_customer``. Lower case like every stored
reason; templates capitalise them.
"""

from __future__ import annotations

import math

DAY = 86_400.0


def _every(days: float) -> str:
    if days < 1.5:
        return "about every day"
    if days < 10.5:
        return f"about every {round(days)} days"
    weeks = round(days / 7)
    if days < 8 * 7:
        return "about every week" if weeks == 1 else f"about every {weeks} weeks"
    months = round(days / 30.4)
    return "about every month" if months == 1 else f"about every {months} months"


def _ago(days: float) -> str:
    if days < 1:
        return "today"
    if days < 2:
        return "yesterday"
    if days < 14:
        return f"{int(days)} days ago"
    if days < 8 * 7:
        return f"{int(days // 7)} weeks ago"
    months = int(days // 30.4)
    return "1 month ago" if months <= 1 else f"{months} months ago"


def buy_again_reason(*, times_bought: int, days_since_last: float, interval_days: float | None) -> str:
    """The reason a bought item is back on the list.

    With a known re-purchase interval: "you buy this about every 3 weeks"; otherwise the history:
    "you bought this 4 times, last 10 days ago" / "you bought this 12 days ago".
    """
    if interval_days is not None and math.isfinite(interval_days) and interval_days > 0 and times_bought >= 2:
        return f"you buy this {_every(interval_days)}"
    ago = _ago(max(0.0, days_since_last))
    if times_bought <= 1:
        return f"you bought this {ago}"
    return f"you bought this {times_bought} times, last {ago}"

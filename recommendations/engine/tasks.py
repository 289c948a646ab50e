"""The two recommendation lists (tasks) a shop serves, and how each is measured.

- ``discover``: items new to the customer (cross-sell, a campaign's main block). Targets are the
  held-out basket's items the customer never bought before; candidates exclude everything the
  customer already has.
- ``buy_again``: the customer's own past items, ranked by when they will need them again
  (replenishment). Targets are the held-out basket's items the customer bought before; the
  candidates are exactly the customer's past items.
"""

from __future__ import annotations

LIST_DISCOVER = "discover"
LIST_BUY_AGAIN = "buy_again"
TASKS = (LIST_DISCOVER, LIST_BUY_AGAIN)

__all__ = ["LIST_BUY_AGAIN", "LIST_DISCOVER", "TASKS"]

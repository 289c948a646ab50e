"""Cache of customers' recommendation responses (``GET customers/{id}/recommendations``).

An entry is keyed by the **active version's id**, the **customer's primary key**, the customer's
current **token** and the query (list, limit, filters, explain):

- activation changes the version id in every key, so the new version's lists are served from the
  first request after the commit (old entries are never read again and expire);
- a customer's token is a random string in the cache; ``customer_list_cache_invalidate`` deletes
  it, after the commit, when what the customer may see changes (negative feedback, erasure, a
  change to the customer row such as consent withdrawal, new purchases). The next request makes a
  new token, so every older entry of that customer is unreachable. A request that read the old
  token before the change and writes its (stale) body afterwards writes it under the old token: it
  is never served;
- the primary key, not the external id, is in the key: an erased customer's row is gone, so the
  request is a 404 before the cache is asked, and a customer re-created under the same external id
  gets a new primary key and can never read the erased one's entries.

Catalogue changes (price, stock) are not tracked per entry: a cached response may show them up to
``LIST_CACHE_SECONDS`` late. The cache is the default Django cache; with a per-process cache
(locmem, the default without ``CACHE_URL``) it is off unless ``LIST_CACHE_SECONDS`` is set, since
a worker could not invalidate another worker's entries.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from ..conf import recommendations_settings

DEFAULT_SECONDS = 60
TOKEN_KEY = "recs:list:token:{customer_id}"
ENTRY_KEY = "recs:list:v{version}:c{customer_id}:{token}:{query}"
PROCESS_LOCAL_BACKENDS = ("LocMemCache", "DummyCache")


def list_cache_seconds() -> int:
    """``LIST_CACHE_SECONDS``, or its default: 60 s with a shared cache backend, 0 (off) otherwise."""
    configured = recommendations_settings().LIST_CACHE_SECONDS
    if configured is not None:
        return max(0, int(configured))
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    return 0 if backend.endswith(PROCESS_LOCAL_BACKENDS) else DEFAULT_SECONDS


def _token(customer_id: int, seconds: int) -> str | None:
    key = TOKEN_KEY.format(customer_id=customer_id)
    token = cache.get(key)
    if token is None:
        token = secrets.token_hex(8)
        if not cache.add(key, token, timeout=2 * seconds):  # another request made one first
            token = cache.get(key)
    return token


def customer_list_cached(
    *, model_version_id: int | None, customer_id: int, query: dict[str, Any], build: Callable[[], Any]
) -> Any:
    """The cached response for this customer, version and query, or ``build()`` (then cached)."""
    seconds = list_cache_seconds()
    token = _token(customer_id, seconds) if seconds else None
    if token is None:
        return build()
    digest = hashlib.blake2b(repr(sorted(query.items())).encode(), digest_size=12).hexdigest()
    key = ENTRY_KEY.format(version=model_version_id or 0, customer_id=customer_id, token=token, query=digest)
    body = cache.get(key)
    if body is None:
        body = build()
        cache.set(key, body, timeout=seconds)
    return body


def customer_list_cache_invalidate(*, customer_ids: Iterable[int]) -> None:
    """Make every cached response of these customers unreachable, once the current transaction
    commits (immediately outside one): a request between the change and the commit must not cache
    what it read before the change under a new token."""
    keys = [TOKEN_KEY.format(customer_id=pk) for pk in customer_ids]
    if keys and list_cache_seconds():
        transaction.on_commit(lambda: cache.delete_many(keys))

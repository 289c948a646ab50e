"""Background jobs by name: a service asks for one, the app's ``tasks`` module says how it is enqueued.

Why: services must not import their own Celery tasks (a service <-> task import circle, and tasks
are the only place that enqueues tasks). A service calls ``enqueue("campaigns.send_batch", ids)``;
``campaigns/tasks.py`` registers, with ``@enqueuer("campaigns.send_batch")``, the function that calls
``task.delay(...)``. Each app's ``AppConfig.ready`` imports its tasks module, so every process (web,
worker, management command, test) has the names registered; eager mode behaves as before because
the same ``delay``/``apply_async`` call runs.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

_ENQUEUERS: dict[str, Callable[..., Any]] = {}

NOT_REGISTERED = "No enqueuer registered for job {name!r}: does the app's AppConfig.ready import its tasks module?"


def enqueuer(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the function that enqueues job ``name`` (used in a ``tasks`` module)."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        _ENQUEUERS[name] = fn
        return fn

    return register


def enqueue(name: str, *args: Any, **kwargs: Any) -> Any:
    """Enqueue job ``name``; returns what its enqueuer returns (e.g. an ``AsyncResult``)."""
    try:
        fn = _ENQUEUERS[name]
    except KeyError:
        raise LookupError(NOT_REGISTERED.format(name=name)) from None
    return fn(*args, **kwargs)

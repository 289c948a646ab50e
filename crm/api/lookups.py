"""The one get-or-404 of the REST APIs: a selector reads (``None`` when absent), the view answers 404."""
from __future__ import annotations

from typing import TypeVar

from rest_framework import exceptions

T = TypeVar("T")


def found_or_404(obj: T | None, message: str | None = None) -> T:
    """``obj``, or a 404 whose ``detail`` is ``message`` (DRF's "Not found." when none is given)."""
    if obj is None:
        raise exceptions.NotFound(message)
    return obj

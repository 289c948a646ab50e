"""The vocabulary of the synthetic shop: categories, brands, styles, product nouns, names, countries.

The tables themselves are data, in ``vocab.json`` next to this module; this module gives them their
Python shapes (tuples, ``Category``) once at import.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Category:
    name: str
    code: str
    brands: tuple[str, ...]
    styles: tuple[str, ...]  # the latent taste dimensions: each item has one, each customer prefers some
    products: tuple[str, ...]  # what people come for
    accessories: tuple[str, ...]  # what they buy next, after a product
    product_price: tuple[int, int]
    accessory_price: tuple[int, int]
    blurb: str
    color: str = "#64748b"  # of the generated placeholder image
    replenish_days: tuple[int, int] | None = None  # consumables: customers re-order on a cycle in this range

    @classmethod
    def from_json(cls, row: dict) -> Category:
        """A category from its ``vocab.json`` object (lists become tuples)."""
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in row.items()})


def _weighted(table: dict[str, int]) -> tuple[tuple[str, int], ...]:
    """``{"DE": 25, ...}`` as ``(("DE", 25), ...)``, in file order (the generator's draw order)."""
    return tuple(table.items())


_VOCAB = json.loads((Path(__file__).with_name("vocab.json")).read_text(encoding="utf-8"))

ADJECTIVES: tuple[str, ...] = tuple(_VOCAB["adjectives"])
CATEGORIES: tuple[Category, ...] = tuple(Category.from_json(row) for row in _VOCAB["categories"])
COUNTRIES = _weighted(_VOCAB["countries"])
# country -> (first names, last names)
NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    country: (tuple(names["first"]), tuple(names["last"])) for country, names in _VOCAB["names"].items()
}
TIERS = _weighted(_VOCAB["tiers"])
AGE_BANDS = _weighted(_VOCAB["age_bands"])

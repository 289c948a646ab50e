"""Recommender algorithms behind one contract (see ``base.Recommender``)."""

from __future__ import annotations

import json
from pathlib import Path

from .base import Recommender, top_k
from .calibration import apply_platt, calibrate, fit_platt
from .ease import EASE, EASEConfig
from .itemknn import ItemKNN, ItemKNNConfig
from .popularity import Popularity, PopularityConfig
from .sequential import Sequential, SequentialConfig

ALGORITHMS: dict[str, type[Recommender]] = {
    "popularity": Popularity,
    "itemknn": ItemKNN,
    "ease": EASE,
    "sequential": Sequential,
}


def make_recommender(algorithm: str, params: dict | None = None) -> Recommender:
    """Instantiate ``algorithm`` with ``params`` (keys of its config dataclass)."""
    try:
        cls = ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(f"Unknown algorithm {algorithm!r}; choose one of {sorted(ALGORITHMS)}.") from None
    return cls(**(params or {}))


def load_recommender(path: str | Path) -> Recommender:
    """Load any saved model, dispatching on the ``algorithm`` in its config.json."""
    algorithm = json.loads((Path(path) / "config.json").read_text())["algorithm"]
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{path} holds unknown algorithm {algorithm!r}.")
    return ALGORITHMS[algorithm].load(path)


__all__ = [
    "ALGORITHMS", "EASE", "EASEConfig", "ItemKNN", "ItemKNNConfig", "Popularity",
    "PopularityConfig", "Recommender", "Sequential", "SequentialConfig", "apply_platt",
    "calibrate", "fit_platt", "load_recommender", "make_recommender", "top_k",
]

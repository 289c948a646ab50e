"""Recommender algorithms behind one contract (see ``base.Recommender``)."""

from __future__ import annotations

import json
from pathlib import Path

from .base import Recommender, top_k
from .blend import EASETrending, EASETrendingConfig
from .buy_again import BuyAgain, BuyAgainConfig
from .calibration import apply_platt, calibrate, fit_platt
from .ease import EASE, EASEConfig
from .itemknn import ItemKNN, ItemKNNConfig
from .popularity import Popularity, PopularityConfig, Trending, TrendingConfig
from .sequential import Sequential, SequentialConfig

# The discover algorithms (what `train --algorithm` chooses from).
ALGORITHMS: dict[str, type[Recommender]] = {
    "popularity": Popularity,
    "trending": Trending,
    "itemknn": ItemKNN,
    "ease": EASE,
    "ease_trending": EASETrending,
    "sequential": Sequential,
}
# Everything that can be saved and loaded (the buy-again ranker is the second list's model).
LOADABLE: dict[str, type[Recommender]] = {**ALGORITHMS, "buy_again": BuyAgain}
BUY_AGAIN_DIR = "buy_again"


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
    if algorithm not in LOADABLE:
        raise ValueError(f"{path} holds unknown algorithm {algorithm!r}.")
    return LOADABLE[algorithm].load(path)


def load_buy_again(artifact_path: str | Path) -> BuyAgain | None:
    """The buy-again ranker saved next to a version's discover model, or None (older versions)."""
    path = Path(artifact_path) / BUY_AGAIN_DIR
    if not (path / "config.json").exists():
        return None
    model = BuyAgain.load(path)
    assert isinstance(model, BuyAgain)
    return model


__all__ = [
    "ALGORITHMS", "BUY_AGAIN_DIR", "BuyAgain", "BuyAgainConfig", "LOADABLE", "load_buy_again", "EASE",
    "EASEConfig", "EASETrending", "EASETrendingConfig", "ItemKNN", "ItemKNNConfig", "Popularity",
    "PopularityConfig", "Recommender", "Sequential", "SequentialConfig", "apply_platt",
    "Trending", "TrendingConfig", "calibrate", "fit_platt", "load_recommender", "make_recommender", "top_k",
]

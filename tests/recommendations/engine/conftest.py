"""Fixtures for the ML core tests: synthetic data only, no Django, no database."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recommendations.engine.data import build_dataset, leave_last_out_split
from recommendations.engine.synthetic import planted_clusters

# Small models: one thread avoids OpenMP contention on shared 2-core CI boxes.
torch.set_num_threads(1)

FAST_SEQUENTIAL = {"max_len": 20, "dim": 32, "max_epochs": 25, "patience": 4, "seed": 0}


@pytest.fixture(scope="session")
def clusters():
    """300 customers in 6 clusters walking through their cluster's 20 items in order;
    2 cold (event-less) items per cluster."""
    return planted_clusters(n_users=300, n_clusters=6, items_per_cluster=20,
                            n_cold_per_cluster=2, seed=0)


@pytest.fixture(scope="session")
def clusters_split(clusters):
    ds, _ = build_dataset(clusters.events, item_keys=clusters.item_keys)
    return leave_last_out_split(ds)


@pytest.fixture(scope="session")
def cluster_onehot(clusters) -> np.ndarray:
    """A stand-in 'text embedding': one-hot of the item's cluster (cheap, no encoder)."""
    emb = np.zeros((len(clusters.item_keys), 8), np.float32)
    emb[np.arange(len(clusters.item_keys)), clusters.item_cluster] = 1.0
    return emb


@pytest.fixture(scope="session")
def text_encoder():
    from recommendations.engine.text import TextEncoder

    return TextEncoder(device="cpu", batch_size=32)

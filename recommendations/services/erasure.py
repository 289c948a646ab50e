"""Right to erasure, recommendations side: stored lists, model artefacts, training snapshots.

- Stored recommendations of the customer are deleted (the export lists them first).
- Every saved model artefact that holds the customer (their key, seen items and history are
  per-customer arrays) is rewritten without them: the model is loaded, ``forget_users`` empties
  their rows, it is saved to a *new* directory, and the versions' ``artifact_path`` switches to it
  inside the erasure's transaction. Readers see the old or the new artefact, never a half-written
  one; the old directory is deleted once the transaction commits.
- A training run that read its data before an erasure committed drops the erased customers from
  its artefact before registering it (``artifact_forget_erased``), and training snapshots leave out
  events of re-created erased external ids dated before their erasure (``crm.erasure``).
"""
from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from django.db import transaction

from crm.models import Customer

from ..engine.models import Recommender, load_recommender
from ..models import ModelVersion, Recommendation

logger = logging.getLogger(__name__)


def customer_recommendations_export(*, customer: Customer) -> list[dict[str, Any]]:
    rows = Recommendation.objects.filter(customer=customer).select_related("item").order_by(
        "model_version_id", "rank"
    )
    return [
        {"model_version": r.model_version_id, "rank": r.rank, "item": r.item.sku, "score": r.score,
         "probability": r.probability, "reason": r.reason}
        for r in rows
    ]


def _holds(path: str, key: str) -> bool:
    arrays = Path(path) / "arrays.npz"
    if not arrays.exists():
        return False
    with np.load(arrays, allow_pickle=False) as z:
        return bool(np.isin(z["user_keys"], [key]).any())


def _rewritten(path: str, keys: set[str]) -> str:
    """Save the artefact at ``path`` without ``keys`` into a fresh sibling directory; return its path."""
    model = load_recommender(path)
    model.forget_users(keys)
    old = Path(path)
    stem = old.name.split("-erased-")[0]
    target = old.with_name(f"{stem}-erased-{uuid.uuid4().hex[:12]}")
    staging = target.with_name(target.name + ".tmp")
    model.save(staging)
    staging.rename(target)  # atomic on one file system: the directory appears complete
    return str(target)


def customer_erase_from_models(*, customer: Customer) -> int:
    """Rewrite every artefact that holds the customer; returns how many were rewritten.

    Runs inside ``customer_erase``'s transaction; the version rows are locked first so two
    erasures never both rewrite the same old artefact (the second would undo the first).
    """
    key = str(customer.pk)
    Recommendation.objects.filter(customer=customer).delete()
    versions = list(ModelVersion.objects.select_for_update().exclude(artifact_path="").order_by("pk"))
    rewritten = 0
    for path in dict.fromkeys(v.artifact_path for v in versions):
        if not _holds(path, key):
            continue
        new_path = _rewritten(path, {key})
        ModelVersion.objects.filter(artifact_path=path).update(artifact_path=new_path)
        transaction.on_commit(lambda old=path: shutil.rmtree(old, ignore_errors=True))
        rewritten += 1
    if rewritten:
        logger.info("erased customer %s from %d model artefact(s)", customer.pk, rewritten)
    return rewritten


def artifact_forget_erased(model: Recommender) -> int:
    """Drop customers deleted since the training data was read (an erasure during training)."""
    keys = [k for k in model.user_keys if k]
    existing = set()
    ids = [int(k) for k in keys if k.isdigit()]
    for start in range(0, len(ids), 10_000):
        existing.update(Customer.objects.filter(pk__in=ids[start:start + 10_000]).values_list("pk", flat=True))
    gone = {k for k in keys if k.isdigit() and int(k) not in existing}
    return model.forget_users(gone) if gone else 0

"""Stored recommendations: columnar blocks written (COPY on PostgreSQL), shards replaced, old versions dropped.

Runs on the default SQLite and, with DATABASE_URL pointing at PostgreSQL, on the partitioned table
(the same assertions then cover COPY, the per-version table, ATTACH and the partition drop).
"""

import numpy as np
import pytest
from django.db import connection

from crm.models import Customer, Item
from recommendations.models import ModelVersion, Recommendation
from recommendations.services import partitions
from recommendations.services.bulk_write import RecommendationBlock, RecommendationWriter
from recommendations.services.partitions import recommendation_versions_prune, version_storage_attach

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def catalogue():
    customers = [Customer.objects.create(external_id=f"c{n}", email=f"c{n}@example.com") for n in range(6)]
    items = [Item.objects.create(sku=f"sku-{n}", title=f"Item {n}") for n in range(8)]
    return customers, items


def _block(customers, items, *, k=3, offset=0, reasons=("because you bought Tea \t \\ \u00e9", "", "popular")):
    ids = np.array([c.pk for c in customers])
    top = np.array([[items[(r + j + offset) % len(items)].pk for j in range(k)] for r in range(len(ids))])
    scores = np.tile(np.array([3.0, 2.0, -np.inf][:k]), (len(ids), 1))
    codes = (np.arange(len(ids))[:, None] + np.arange(k)[None]) % len(reasons)
    return RecommendationBlock.from_top_k("discover", ids, top, scores, probabilities=np.full(scores.shape, 0.25),
                                          reason_codes=codes, reasons=list(reasons))


def _stored(version):
    return list(Recommendation.objects.filter(model_version=version).order_by("customer_id", "rank")
                .values_list("customer_id", "rank", "item_id", "score", "probability", "reason"))


def test_writer_stores_blocks_and_replaces_a_shard_range(catalogue):
    customers, items = catalogue
    version = ModelVersion.objects.create(algorithm="test", status=ModelVersion.Status.SCORING)
    lo, hi = customers[0].pk, customers[-1].pk
    with RecommendationWriter(version.pk, lo, hi) as writer:
        writer.put(_block(customers[:3], items))
        writer.put(_block(customers[3:], items))
    version_storage_attach(version.pk)
    rows = _stored(version)
    # -inf scores are not stored; ranks 1..n; reasons (tabs, backslashes, accents) survive exactly
    assert len(rows) == 12 and {r[1] for r in rows} == {1, 2}
    first = rows[0]
    assert first[:5] == (customers[0].pk, 1, items[0].pk, 3.0, 0.25)
    assert first[5] == "because you bought Tea \t \\ \u00e9"
    assert {r[5] for r in rows} == {"because you bought Tea \t \\ \u00e9", "", "popular"}
    # a retried shard replaces exactly its own range
    with RecommendationWriter(version.pk, customers[0].pk, customers[2].pk) as writer:
        writer.put(_block(customers[:3], items, offset=5))
    rows = _stored(version)
    assert len(rows) == 12
    assert [r[2] for r in rows if r[0] == customers[0].pk] == [items[5].pk, items[6].pk]
    assert [r[2] for r in rows if r[0] == customers[5].pk] == [items[2].pk, items[3].pk]  # untouched


def test_a_failing_writer_leaves_the_previous_rows(catalogue):
    customers, items = catalogue
    version = ModelVersion.objects.create(algorithm="test", status=ModelVersion.Status.SCORING)
    with RecommendationWriter(version.pk, customers[0].pk, customers[-1].pk) as writer:
        writer.put(_block(customers, items))
    version_storage_attach(version.pk)
    before = _stored(version)
    with pytest.raises(RuntimeError), RecommendationWriter(version.pk, customers[0].pk, customers[-1].pk) as writer:
        writer.put(_block(customers, items, offset=3))
        raise RuntimeError("worker died mid-shard")
    assert _stored(version) == before


def test_only_the_last_two_served_versions_keep_their_rows(catalogue):
    customers, items = catalogue
    versions = []
    for n in range(4):
        status = ModelVersion.Status.READY if n == 3 else ModelVersion.Status.RETIRED
        version = ModelVersion.objects.create(algorithm="test", status=status, is_active=n == 3)
        with RecommendationWriter(version.pk, customers[0].pk, customers[-1].pk) as writer:
            writer.put(_block(customers, items))
        version_storage_attach(version.pk)
        versions.append(version)
    for n, version in enumerate(versions[:3]):  # activation order: v0, v1, v2, then v3 (active)
        ModelVersion.objects.filter(pk=version.pk).update(activated_at=f"2026-01-0{n + 1}T00:00:00Z")
    # when
    dropped = recommendation_versions_prune()
    # then the active version and the one before it (rollback target) keep their lists
    assert {versions[0].pk, versions[1].pk} <= set(dropped) and not {versions[2].pk, versions[3].pk} & set(dropped)
    assert [len(_stored(v)) for v in versions] == [0, 0, 12, 12]
    if partitions.partitioned():
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s)", [partitions.version_table(versions[0].pk)])
            assert cursor.fetchone()[0] is None  # a partition drop, not a DELETE

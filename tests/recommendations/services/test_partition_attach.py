"""PostgreSQL: a version table gets its unique index before ATTACH, and ATTACH adopts it (one unique
index per partition, part of the parent's constraint), so the attach only validates foreign keys."""

import numpy as np
import pytest
from django.db import IntegrityError, connection, transaction

from crm.models import Customer, Item
from recommendations.models import ModelVersion, Recommendation
from recommendations.services import partitions
from recommendations.services.bulk_write import RecommendationBlock, RecommendationWriter

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgres_only():
    if not partitions.partitioned():
        pytest.skip("the partitioned table exists on PostgreSQL only (DATABASE_URL)")


def _indexes(table: str) -> list[tuple[str, bool, bool]]:
    """(name, unique, is a partition of a parent index) for every index of ``table``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indisunique, EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = c.oid) "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass "
            "ORDER BY c.relname", [table])
        return cursor.fetchall()


def test_attach_adopts_the_unique_index_built_on_the_version_table():
    customers = [Customer.objects.create(external_id=f"c{n}", email=f"c{n}@example.com") for n in range(3)]
    items = [Item.objects.create(sku=f"s{n}", title=f"Item {n}") for n in range(4)]
    version = ModelVersion.objects.create(algorithm="test", status=ModelVersion.Status.SCORING)
    with RecommendationWriter(version.pk, customers[0].pk, customers[-1].pk) as writer:
        writer.put(RecommendationBlock.from_top_k(
            "discover", np.array([c.pk for c in customers]),
            np.array([[items[0].pk, items[1].pk]] * 3), np.array([[2.0, 1.0]] * 3)))
    table = partitions.version_table(version.pk)
    # when the index is built (twice: a retried callback) and the table attached
    partitions.version_storage_index(version.pk)
    partitions.version_storage_index(version.pk)
    assert [(unique, inherited) for _, unique, inherited in _indexes(table) if unique] == [(True, False)]
    partitions.version_storage_attach(version.pk)
    # then the partition has that one unique index, now part of the parent's constraint
    unique = [(name, inherited) for name, is_unique, inherited in _indexes(table) if is_unique]
    assert unique == [(f"{table}_uniq", True)]
    assert partitions.version_attached(version.pk)
    assert Recommendation.objects.filter(model_version=version).count() == 6
    # and it enforces uniqueness through the parent
    with pytest.raises(IntegrityError), transaction.atomic():
        Recommendation.objects.create(model_version=version, customer=customers[0], list="discover", rank=1,
                                      item=items[2], score=0.0, reason="")

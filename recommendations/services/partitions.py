"""Where a model version's stored recommendations live, and how old versions go away.

PostgreSQL (after migration ``0003_recommendation_partitions``): ``recommendations_recommendation``
is LIST-partitioned by ``model_version_id``. A version is scored into its own plain table
``recommendations_recommendation_v<pk>`` (no unique index or foreign-key trigger per row, only a
BRIN index on ``customer_id`` so a retried shard can replace its range), then **attached** as the
version's partition in one statement that builds the indexes and validates the foreign keys in bulk.
Readers only ever see attached, complete versions; activation stays the atomic flip of
``ModelVersion.is_active``. Dropping an old version is ``DETACH`` + ``DROP TABLE``.

Other databases (SQLite) keep the one plain table: writes go there directly and pruning deletes.
"""

from __future__ import annotations

import logging

from django.db import connection, transaction

from ..models import ModelVersion, Recommendation

logger = logging.getLogger(__name__)

TABLE = Recommendation._meta.db_table
KEEP_VERSIONS = 2


def partitioned() -> bool:
    """True when the recommendations table is partitioned (PostgreSQL after the migration)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace", [TABLE]
        )
        return cursor.fetchone() is not None


def version_table(version_id: int) -> str:
    return f"{TABLE}_v{int(version_id)}"


def _exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return bool(cursor.fetchone()[0])


def version_attached(version_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE c.relname = %s AND p.relname = %s",
            [version_table(version_id), TABLE],
        )
        return cursor.fetchone() is not None


def write_target(version_id: int) -> str:
    """The table a version's rows are written into (prepared on PostgreSQL)."""
    if not partitioned():
        return TABLE
    version_storage_prepare(version_id)
    return version_table(version_id)


@transaction.atomic
def version_storage_prepare(version_id: int) -> None:
    """Create the version's (detached) table if it has none; idempotent, safe for every shard."""
    name, vid = version_table(version_id), int(version_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])
        if _exists(name):
            return
        cursor.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_version CHECK (model_version_id = {vid})")
        cursor.execute(f"CREATE INDEX {name}_customer_brin ON {name} USING brin (customer_id)")
        # rows written through the ORM before the version had a table landed in the default partition
        cursor.execute(f"INSERT INTO {name} SELECT * FROM {TABLE}_default WHERE model_version_id = {vid}")
        cursor.execute(f"DELETE FROM {TABLE}_default WHERE model_version_id = {vid}")


# the parent's unique constraint (migration 0003); a version table gets the same one before ATTACH
UNIQUE_COLUMNS = "customer_id, list, rank, model_version_id"
MAINTENANCE_WORK_MEM = "512MB"  # the index sort, and the foreign-key anti-joins at ATTACH, in memory


def version_storage_index(version_id: int) -> None:
    """Build the unique index of a scored, not yet attached version table; idempotent.

    ``ATTACH PARTITION`` adopts a matching unique constraint of the partition instead of building
    one, so the attach statement (which holds a ``SHARE UPDATE EXCLUSIVE`` lock on the parent) is
    left with the foreign-key validation only. The build runs on the plain table with parallel
    maintenance workers (``max_parallel_maintenance_workers``, PostgreSQL's default 2).
    """
    if not partitioned():
        return
    name = version_table(version_id)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])
        if version_attached(version_id) or _has_unique(cursor, name):
            return
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
        cursor.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_uniq UNIQUE ({UNIQUE_COLUMNS})")


def _has_unique(cursor, name: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'", [name])
    return cursor.fetchone() is not None


def version_storage_attach(version_id: int) -> None:
    """Make a scored version's rows visible: attach its table as the version's partition.

    The unique index is built first on the plain table (:func:`version_storage_index`, adopted by the
    ATTACH); the ATTACH itself validates the foreign keys (one anti-join per key: PostgreSQL 15
    cannot take a ``NOT VALID`` foreign key on a partitioned table, so this scan stays).
    """
    if not partitioned():
        return
    version_storage_prepare(version_id)
    if version_attached(version_id):
        return
    version_storage_index(version_id)
    name, vid = version_table(version_id), int(version_id)
    with transaction.atomic(), connection.cursor() as cursor:
        # the foreign-key checks run with work_mem = maintenance_work_mem (hash anti-joins in memory)
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
        cursor.execute(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES IN ({vid})")
        cursor.execute(f"ANALYZE {name}")
    logger.info("v%s: recommendations attached as partition %s", vid, name)


def versions_to_keep() -> set[int]:
    """The active version, the one it replaced (rollback target), and every version not retired
    (being trained or scored, or ready and waiting to be activated)."""
    keep = set(ModelVersion.objects.exclude(status=ModelVersion.Status.RETIRED).values_list("pk", flat=True))
    retired_recent = ModelVersion.objects.filter(status=ModelVersion.Status.RETIRED).order_by(
        "-activated_at", "-pk").values_list("pk", flat=True)[: max(0, KEEP_VERSIONS - 1)]
    return keep | set(retired_recent)


def recommendation_versions_prune() -> list[int]:
    """Drop the stored rows of retired versions beyond the last ``KEEP_VERSIONS`` served ones.

    On PostgreSQL this is a partition ``DROP TABLE`` per version (instant, no dead tuples); elsewhere
    a ``DELETE``. The version rows themselves stay (metrics, audit); their lists are gone.
    """
    keep = versions_to_keep()
    if partitioned():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname FROM pg_class c WHERE c.relkind IN ('r', 'p') AND c.relname ~ %s "
                "AND c.relnamespace = current_schema()::regnamespace", [f"^{TABLE}_v[0-9]+$"]
            )
            present = {int(name.rsplit("_v", 1)[1]) for (name,) in cursor.fetchall()}
        dropped = sorted(present - keep)
        for vid in dropped:
            with transaction.atomic(), connection.cursor() as cursor:
                if version_attached(vid):
                    cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {version_table(vid)}")
                cursor.execute(f"DROP TABLE {version_table(vid)}")
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {TABLE}_default WHERE NOT (model_version_id = ANY(%s))", [sorted(keep)])
    else:
        present = set(Recommendation.objects.values_list("model_version_id", flat=True).distinct())
        dropped = sorted(present - keep)
        if dropped:
            Recommendation.objects.filter(model_version_id__in=dropped).delete()
    if dropped:
        logger.info("dropped the stored recommendations of versions %s", dropped)
    return dropped

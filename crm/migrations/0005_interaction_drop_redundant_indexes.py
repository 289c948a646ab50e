"""Drop Interaction's redundant indexes: every imported line pays for each index (measured on
PostgreSQL, 693k Ta Feng lines: the INSERT of the import went from 90 s to 66 s on a loaded 2-core box).

- customer_id, item_id, occurred_at: each leads a composite index (interaction_customer_recent /
  interaction_customer_order, interaction_item_kind, interaction_since) that serves the same lookups;
- event_id's ``varchar_pattern_ops`` twin (PostgreSQL only, made for LIKE 'prefix%' queries nobody
  runs): the unique index answers every event_id lookup.
"""

import django.db.models.deletion
from django.db import migrations, models


def _like_index(schema_editor) -> str:
    """Django's own name for the index (crm_interaction_event_id_<hash>_like)."""
    return schema_editor._create_index_name("crm_interaction", ["event_id"], suffix="_like")


def drop_event_id_like(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(_like_index(schema_editor))}")


def create_event_id_like(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        name = schema_editor.quote_name(_like_index(schema_editor))
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON crm_interaction (event_id varchar_pattern_ops)")


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0004_interaction_order_id'),
    ]

    operations = [
        migrations.AlterField(
            model_name='interaction',
            name='customer',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='interactions', to='crm.customer'),
        ),
        migrations.AlterField(
            model_name='interaction',
            name='item',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='interactions', to='crm.item'),
        ),
        migrations.AlterField(
            model_name='interaction',
            name='occurred_at',
            field=models.DateTimeField(),
        ),
        migrations.RunPython(drop_event_id_like, create_event_id_like),
    ]

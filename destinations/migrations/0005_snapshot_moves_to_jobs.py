"""The Snapshot model moved to jobs (state only: the table stays); the reindex lock is a queue
item's `lock` now, not a foreign key here."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("destinations", "0004_integrity_check"),
        ("jobs", "0006_snapshot_and_run_locks"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="snapshot", name="account"),
                migrations.RemoveField(model_name="snapshot", name="destination"),
                migrations.DeleteModel(name="Snapshot"),
            ],
            database_operations=[],
        ),
        migrations.RemoveField(
            model_name="destination",
            name="reindexing",
        ),
    ]

"""The Snapshot model moves from destinations to jobs (state only: its table keeps its name),
and run locks move from foreign keys on jobs and destinations to a unique column of the queue
item that holds them."""

import django.db.models.deletion
from django.db import migrations, models

FINISHED = ("completed", "partial", "failed", "aborted")


def carry_locks(apps, schema_editor):
    """A run or reindex holding its lock while the panel is upgraded keeps holding it."""
    BackupJob = apps.get_model("jobs", "BackupJob")
    Destination = apps.get_model("destinations", "Destination")
    QueueItem = apps.get_model("jobs", "QueueItem")
    for job_id, item_id in BackupJob.objects.exclude(running=None).values_list("pk", "running_id"):
        QueueItem.objects.filter(pk=item_id).exclude(status__in=FINISHED).update(lock=f"backup:job:{job_id}")
    for destination_id, item_id in Destination.objects.exclude(reindexing=None).values_list("pk", "reindexing_id"):
        QueueItem.objects.filter(pk=item_id).exclude(status__in=FINISHED).update(
            lock=f"reindex:destination:{destination_id}"
        )


def restore_locks(apps, schema_editor):
    BackupJob = apps.get_model("jobs", "BackupJob")
    Destination = apps.get_model("destinations", "Destination")
    QueueItem = apps.get_model("jobs", "QueueItem")
    for item_id, lock in QueueItem.objects.exclude(lock=None).values_list("pk", "lock"):
        kind, _, key = lock.rpartition(":")
        if kind == "backup:job":
            BackupJob.objects.filter(pk=int(key)).update(running_id=item_id)
        elif kind == "reindex:destination":
            Destination.objects.filter(pk=int(key)).update(reindexing_id=item_id)


def move_content_type(apps, schema_editor):
    """Permissions and admin history of backups follow the model to its new app."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="jobs", model="snapshot").exists():
        ContentType.objects.filter(app_label="destinations", model="snapshot").update(app_label="jobs")


def move_content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="destinations", model="snapshot").exists():
        ContentType.objects.filter(app_label="jobs", model="snapshot").update(app_label="destinations")


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("destinations", "0004_integrity_check"),
        ("jobs", "0005_verify_kind"),
    ]

    operations = [
        migrations.AddField(
            model_name="queueitem",
            name="lock",
            field=models.CharField(blank=True, editable=False, max_length=100, null=True, unique=True),
        ),
        migrations.RunPython(carry_locks, restore_locks),
        migrations.RemoveField(
            model_name="backupjob",
            name="running",
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Snapshot',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('account_name', models.CharField(db_index=True, max_length=64)),
                        ('engine', models.CharField(choices=[('native', 'Backupsite'), ('cpanel', 'cPanel')], max_length=10)),
                        ('type', models.CharField(choices=[('full', 'Full'), ('incremental', 'Incremental')], default='full', max_length=12)),
                        ('layout', models.CharField(blank=True, help_text='Where cPanel put it: daily, weekly, ...', max_length=20)),
                        ('path', models.CharField(help_text='Where it lies, relative to the destination directory.', max_length=1024)),
                        ('created', models.DateTimeField(help_text='When its data was taken.')),
                        ('size', models.BigIntegerField(default=0, help_text='Bytes stored on the destination.')),
                        ('state', models.CharField(choices=[('complete', 'Complete'), ('writing', 'Being written'), ('updating', 'Being updated'), ('broken', 'Damaged'), ('incomplete', 'Incomplete')], default='writing', max_length=12)),
                        ('locked', models.BooleanField(default=False)),
                        ('flags', models.JSONField(blank=True, default=list)),
                        ('problems', models.JSONField(blank=True, default=list)),
                        ('parts', models.JSONField(blank=True, default=list)),
                        ('listing_root', models.CharField(blank=True, max_length=64)),
                        ('job_uuid', models.UUIDField(blank=True, db_index=True, null=True)),
                        ('generation', models.PositiveIntegerField(default=0)),
                        ('remote_size', models.BigIntegerField(blank=True, null=True)),
                        ('remote_mtime', models.DateTimeField(blank=True, null=True)),
                        ('remote_key', models.CharField(blank=True, max_length=255)),
                        ('indexed', models.DateTimeField(blank=True, null=True)),
                        ('verified_at', models.DateTimeField(blank=True, null=True)),
                        ('verify_problems', models.JSONField(blank=True, default=list)),
                        ('meta', models.JSONField(blank=True, default=dict)),
                        ('account', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='snapshots', to='jobs.account')),
                        ('destination', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='snapshots', to='destinations.destination')),
                    ],
                    options={
                        'db_table': 'destinations_snapshot',
                        'ordering': ['-created'],
                    },
                ),
                migrations.AlterField(
                    model_name='queueitem',
                    name='snapshot',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='queue_items', to='jobs.snapshot'),
                ),
                migrations.AddIndex(
                    model_name='snapshot',
                    index=models.Index(fields=['account_name', '-created'], name='destination_account_bc8c1b_idx'),
                ),
                migrations.AddConstraint(
                    model_name='snapshot',
                    constraint=models.UniqueConstraint(fields=('destination', 'path'), name='unique_snapshot_path'),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]

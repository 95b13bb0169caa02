import os
from typing import Any

from celery import Celery
from celery.signals import beat_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backupsite.settings")

app = Celery("backupsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@beat_init.connect
def _private_data_folder(**_: Any) -> None:
    """A worker or beat started on its own (not by runpanel) keeps the data folder private too;
    the pool's processes fork after this and inherit the umask."""
    from backupsite.datadir import secure_process

    secure_process()

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class JobsConfig(AppConfig):
    name = "jobs"

    def ready(self) -> None:
        from . import notifications, signals  # noqa: F401  (notifications registers its queue hook)

        post_migrate.connect(signals.discovery_schedule, sender=self)

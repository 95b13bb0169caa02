from django.apps import AppConfig


class BackupsiteConfig(AppConfig):
    name = "backupsite"

    def ready(self) -> None:
        # The Celery app, so that tasks sent from the panel go to its broker.
        from . import celery, checks  # noqa: F401

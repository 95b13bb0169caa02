from django.apps import AppConfig


class BackupsiteConfig(AppConfig):
    name = "backupsite"

    def ready(self) -> None:
        from . import checks  # noqa: F401

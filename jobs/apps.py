from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"

    def ready(self) -> None:
        from . import notifications, signals  # noqa: F401  (notifications registers its queue hook)

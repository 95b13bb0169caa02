from django.apps import AppConfig
from django.db.models.signals import post_migrate


class JobsConfig(AppConfig):
    name = "jobs"

    def ready(self) -> None:
        # Schedules follow the rows they belong to (schedules); notifications hear about
        # finished work (events registers its queue hook). Each work package has its own task
        # module: loading them here registers every task in every process (panel, worker,
        # beat), so work is sent by task name from anywhere.
        from . import schedules
        from .backup import tasks as backup_tasks  # noqa: F401
        from .discovery import tasks as discovery_tasks  # noqa: F401
        from .notify import events  # noqa: F401
        from .notify import tasks as notify_tasks  # noqa: F401
        from .queue import tasks as queue_tasks  # noqa: F401
        from .reindex import tasks as reindex_tasks  # noqa: F401
        from .restore import tasks as restore_tasks  # noqa: F401
        from .verify import tasks as verify_tasks  # noqa: F401

        post_migrate.connect(schedules.after_migrate, sender=self)

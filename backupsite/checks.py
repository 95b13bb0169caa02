"""Deployment checks (`manage.py check --deploy`) for what Django's own checks cannot know."""

import os
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register


@register(Tags.security, deploy=True)
def secrets_from_environment(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not settings.ENCRYPTION_KEY:
        messages.append(
            Warning(
                "BACKUPSITE_ENCRYPTION_KEY is not set: FTP passwords are encrypted with a key "
                "generated into the data folder, next to the database that holds them.",
                hint="Set BACKUPSITE_ENCRYPTION_KEY (a Fernet key) from your secret store, and keep "
                "a copy apart from database backups.",
                id="backupsite.W001",
            )
        )
    if not os.environ.get("SECRET_KEY"):
        messages.append(
            Warning(
                "SECRET_KEY is not set in the environment: a key generated into the data folder is used.",
                hint="Set SECRET_KEY from your secret store.",
                id="backupsite.W002",
            )
        )
    return messages

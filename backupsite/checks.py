"""System checks for what Django's own checks cannot know: a private data folder (always) and
secrets kept apart from it (`manage.py check --deploy`)."""

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .datadir import open_to_others, sqlite_files


@register(Tags.security)
def data_folder_private(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Any local user who reads the database has the admin's API token and the session keys."""
    messages: list[CheckMessage] = []
    data_dir = Path(settings.DATA_DIR)
    mode = open_to_others(data_dir)
    if mode is not None:
        messages.append(
            Error(
                f"The data folder {data_dir} is open to other users (mode {mode:04o}): it holds the "
                "database, the keys, manifests with every client's file names and downloads.",
                hint=f"chmod 700 {data_dir} (starting the panel does it for folders it owns).",
                id="backupsite.E001",
            )
        )
    for db in settings.DATABASES.values():
        if not db["ENGINE"].endswith("sqlite3"):
            continue
        for path in sqlite_files(Path(db["NAME"])):
            mode = open_to_others(path)
            if mode is not None:
                messages.append(
                    Error(
                        f"The database file {path} is open to other users (mode {mode:04o}): it holds the API tokens, the sessions and the password hashes.",
                        hint=f"chmod 600 {path}",
                        id="backupsite.E002",
                    )
                )
    return messages


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

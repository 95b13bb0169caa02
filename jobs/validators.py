import fnmatch
import os
import re

from django.core.exceptions import ValidationError

from .notify.kinds import NotificationEvent

_USERNAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_DB_NAME = re.compile(r"^[A-Za-z0-9_$-]{1,64}$")

JUNK_EXCLUDES = [
    ".cache/",
    ".trash/",
    ".Trash-*/",
    "tmp/",
    ".npm/_cacache/",
    ".composer/cache/",
    "*/wp-content/cache/",
    "*/cache/",
    "mail/*/*/.Trash/",
    "mail/.Trash/",
    "*.swp",
    "*~",
    "error_log",
]


def validate_username(value: str) -> None:
    if not _USERNAME.match(value):
        raise ValidationError(
            "Enter the hosting account's system user name: lowercase letters, digits, '_', '-' or '.', "
            "starting with a letter or '_', at most 32 characters."
        )


def validate_home(value: str) -> None:
    if not value:
        return
    if not value.startswith("/") or "\x00" in value:
        raise ValidationError("Enter the absolute path of the account's home folder, e.g. /home/bob.")
    if os.path.normpath(value) != value.rstrip("/") or value == "/":
        raise ValidationError(
            "Enter a plain path without '..', '.', double or trailing slashes, and not '/'."
        )


def validate_database_names(value: list[str]) -> None:
    if not isinstance(value, list):
        raise ValidationError("Enter a list of database names.")
    for name in value:
        if not isinstance(name, str) or not _DB_NAME.match(name):
            raise ValidationError(f"{name!r} is not a valid database name.")


def validate_excludes(value: list[str]) -> None:
    if not isinstance(value, list):
        raise ValidationError("Enter a list of glob patterns.")
    for pattern in value:
        if not isinstance(pattern, str) or not pattern.strip():
            raise ValidationError("Exclude patterns must be non-empty text.")
        if "\x00" in pattern or "\n" in pattern:
            raise ValidationError(f"{pattern!r}: control characters are not allowed in a pattern.")
        if pattern.startswith("/"):
            raise ValidationError(
                f"{pattern!r}: patterns are relative to the home folder; drop the leading '/'."
            )
        try:
            fnmatch.translate(pattern)
        except re.error as exc:  # pragma: no cover - translate rarely raises
            raise ValidationError(f"{pattern!r} is not a valid pattern: {exc}") from None


def home_warnings(home: str) -> list[str]:
    """What is odd about a home folder without making it invalid: an account may be set up
    before its folder exists (or describe one only found in backups), but a typo should not
    go unnoticed until the first backup fails."""
    if not home:
        return []
    from .hostroot import host_path

    real = host_path(home)  # as backups open it, under BACKUPSITE_HOST_ROOT
    if not os.path.exists(real):
        return [
            f"The home folder {home} does not exist on this server: backups of its files fail until it does."
        ]
    if not os.path.isdir(real):
        return [f"{home} is not a folder: backups of its files fail until it is."]
    return []


def validate_events(value: object) -> None:
    """A notification target's events: a list of known event names."""
    if not isinstance(value, list) or not all(isinstance(event, str) for event in value):
        raise ValidationError("Give the events as a list of names.")
    unknown = [event for event in value if event not in NotificationEvent.values]
    if unknown:
        raise ValidationError(
            f"Unknown events: {', '.join(sorted(set(unknown)))}. "
            f"Known: {', '.join(NotificationEvent.values)}."
        )


def validate_globs(value: list[str]) -> None:
    """Shell globs on usernames (job filters)."""
    if not isinstance(value, list):
        raise ValidationError("Enter a list of patterns.")
    for pattern in value:
        if not isinstance(pattern, str) or not pattern.strip():
            raise ValidationError("Patterns must be non-empty text.")
        if len(pattern) > 100 or any(ord(c) < 32 for c in pattern):
            raise ValidationError(f"{pattern[:100]!r}: at most 100 characters, no control characters.")


def validate_usernames(value: list[str]) -> None:
    if not isinstance(value, list):
        raise ValidationError("Enter a list of user names.")
    for name in value:
        if not isinstance(name, str):
            raise ValidationError("Enter user names as text.")
        validate_username(name)

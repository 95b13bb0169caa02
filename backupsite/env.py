"""Strict parsing of settings from environment variables.

A value that is set but cannot be parsed stops the program with a message naming the
variable: a typo in production must not silently fall back to a default.
"""

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of true/false/1/0/yes/no/on/off, not {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, not {value}")
    return value


def env_url(name: str, default: str) -> str:
    """An http(s) address without a trailing slash, e.g. the panel's own base URL."""
    from urllib.parse import urlsplit

    raw = os.environ.get(name)
    value = default if raw is None or raw.strip() == "" else raw.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ImproperlyConfigured(f"{name} must be an http:// or https:// address, not {raw!r}")
    if any(char.isspace() or ord(char) < 32 for char in value):
        raise ImproperlyConfigured(f"{name} must not contain spaces or control characters")
    return value.rstrip("/")


def env_time(name: str, default: tuple[int, int]) -> tuple[int, int]:
    """A time of day written HH:MM, as (hour, minute)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    hour, _, minute = raw.strip().partition(":")
    if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
        raise ImproperlyConfigured(f"{name} must be a time of day written HH:MM, not {raw!r}")
    return int(hour), int(minute)


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_email(name: str, default: str) -> str:
    """An address mail is sent from: `addr@host` or `Name <addr@host>`, checked like a form field."""
    from email.utils import parseaddr

    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip()
    _, address = parseaddr(value)
    try:
        if "\n" in value or "\r" in value:  # it becomes a mail header
            raise ValidationError("more than one line")
        validate_email(address)
    except ValidationError:
        raise ImproperlyConfigured(f"{name} must be an email address, not {raw!r}") from None
    return value

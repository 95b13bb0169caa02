"""Field validators for destinations: small callables shared by the model, forms and API."""

import ipaddress
import posixpath
import re

from celery.schedules import crontab
from django.core.exceptions import ValidationError

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_FINGERPRINT = re.compile(r"^sha256:([0-9A-F]{2}:){31}[0-9A-F]{2}$")


def validate_host(value: str) -> None:
    """A hostname, an IPv4 or an IPv6 address; nothing else (no scheme, port, path or user)."""
    if not value:
        raise ValidationError("Enter the FTP server's host name or IP address.")
    candidate = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(candidate)
        return
    except ValueError:
        pass
    if "://" in value or "/" in value or "@" in value:
        raise ValidationError("Enter only the host name or IP address, without ftp://, user or path.")
    if ":" in value:
        raise ValidationError("Enter the port in the Port field, not in the host.")
    name = value[:-1] if value.endswith(".") else value
    labels = name.split(".")
    if len(name) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValidationError(f"{value!r} is not a valid host name or IP address.")
    if labels[-1].isdigit():
        raise ValidationError(f"{value!r} is not a valid IPv4 address.")


def normalise_directory(value: str) -> str:
    """The backup directory, relative to the FTP user's home, in normal form ('' = the home).

    Raises ValidationError for anything that could leave the home: absolute paths, '..',
    NUL and other control characters.
    """
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValidationError("The directory must not contain control characters.")
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        raise ValidationError("Enter a directory relative to the FTP user's home, not an absolute path.")
    if "\\" in value:
        raise ValidationError("Use forward slashes (/) in the directory.")
    parts = [part for part in value.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValidationError("The directory must not contain '..'.")
    normal = posixpath.join(*parts) if parts else ""
    if len(normal) > 255:
        raise ValidationError("The directory is longer than 255 characters.")
    return normal


def validate_directory(value: str) -> None:
    normalise_directory(value)


def validate_fingerprint(value: str) -> None:
    if value and not _FINGERPRINT.match(value):
        raise ValidationError(
            "Enter the certificate fingerprint as Validate shows it: sha256: then 32 hex pairs "
            "separated by colons."
        )


def parse_cron(value: str) -> crontab:
    fields = value.split()
    if len(fields) != 5:
        raise ValidationError(
            "Enter a cron expression of five fields: minute hour day-of-month month day-of-week "
            "(for example '30 3 * * *')."
        )
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        return crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
        )
    except (ValueError, TypeError, IndexError) as exc:
        raise ValidationError(f"Invalid cron expression: {exc}") from None


def validate_cron(value: str) -> None:
    if value.strip():
        parse_cron(value)

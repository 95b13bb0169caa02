import zoneinfo
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


@cache
def time_zone_names() -> list[str]:
    """The IANA zones this machine knows (tzdata), sorted; computed once per process. The
    system's aliases that name no place ("localtime", "Factory") are left out."""
    return sorted(zoneinfo.available_timezones() - {"localtime", "Factory", "posixrules"})


def validate_time_zone(value: str) -> None:
    if value and value not in time_zone_names():
        raise ValidationError(f"{value!r} is not a time zone this server knows (e.g. Europe/Berlin).")


class Preferences(models.Model):
    """What one user chose for how the panel shows things; absent or blank = the defaults."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences"
    )
    # No choices on the field: the zone list comes from tzdata and would churn migrations.
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text="Times on the pages are shown in this time zone. Empty: the server's.",
    )

    class Meta:
        verbose_name_plural = "preferences"

    def __str__(self) -> str:
        return f"preferences of {self.user}"

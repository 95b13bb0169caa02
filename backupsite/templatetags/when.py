"""Times as the panel shows them: with seconds and the time zone, relative where it helps.

`at` is for lists where times are compared with one another (backups): the absolute time,
the relative one in its title. `when` is for single events (last validated, last and next
run): "3 hours ago" or "in 5 hours", the absolute time in its title. Both wrap the value in
<time datetime="..."> and use the time zone the request activated (the user's preference).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html

register = template.Library()

ABSOLUTE = "Y-m-d H:i:s T"
# Beyond this, a relative time ("23 days ago") says less than the date itself.
RELATIVE_LIMIT = timedelta(days=7)


def absolute(value: datetime) -> str:
    """'2026-12-04 02:04:13 CET' in the active time zone."""
    return date_format(timezone.localtime(value), ABSOLUTE)


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}{'' if number == 1 else 's'}"


def relative(value: datetime, now: datetime | None = None) -> str:
    """'3 hours ago', 'in 5 minutes', 'just now' (one unit, rounded down)."""
    now = now or timezone.now()
    delta = now - value
    future = delta < timedelta(0)
    seconds = int(abs(delta.total_seconds()))
    if seconds < 10:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size:
            text = _count(seconds // size, unit)
            break
    return f"in {text}" if future else f"{text} ago"


def _time(value: datetime, text: str, title: str) -> str:
    return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(), title, text)


@register.filter
def at(value: datetime | None) -> str:
    """The absolute time (seconds, zone), the relative one in the title."""
    if not value:
        return ""
    return _time(value, absolute(value), relative(value))


@register.filter
def when(value: datetime | None) -> str:
    """The relative time while it is recent (or near), else the absolute one; the absolute in
    the title."""
    if not value:
        return ""
    if abs(timezone.now() - value) > RELATIVE_LIMIT:
        return _time(value, absolute(value), relative(value))
    return _time(value, relative(value), absolute(value))


@register.filter
def cron_words(expression: str) -> str:
    """'At 02:00 (server time, UTC)'; the schedule runs in the server's time zone."""
    from django.conf import settings

    from destinations import cron

    words = cron.describe(expression or "")
    return f"{words} (server time, {settings.TIME_ZONE})" if words else ""


@register.filter
def next_run(expression: str) -> datetime | None:
    from destinations import cron

    return cron.next_run(expression or "", timezone.now())

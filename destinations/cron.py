"""Cron schedules in words and their next run, as Celery beat will run them.

The words come from cron-descriptor (24-hour clock). The next run is computed from Celery's
own parse of the expression (`crontab`'s sets), so it follows beat's reading of it, day of
month AND day of week included, in the server's time zone where beat runs the schedules.
"""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any

from cron_descriptor import CasingTypeEnum, ExpressionDescriptor, Options
from django.conf import settings
from django.core.exceptions import ValidationError

from .validators import parse_cron

# A schedule that matches no day in this many years never runs (e.g. 30 February).
_HORIZON_DAYS = 366 * 8


def describe(expression: str) -> str:
    """'At 02:00', 'Every 15 minutes, Monday through Friday'; '' for no schedule."""
    if not expression.strip():
        return ""
    options = Options()
    options.use_24hour_time_format = True
    options.casing_type = CasingTypeEnum.Sentence
    try:
        return str(ExpressionDescriptor(expression, options).get_description())
    except Exception:  # the library's own errors for what parse_cron accepts; show the raw text
        return expression


def next_run(expression: str, after: datetime, tz: str | None = None) -> datetime | None:
    """The first time strictly after `after` that the schedule fires (aware, in `tz`, default
    the server's time zone); None without a schedule or when it never fires."""
    if not expression.strip():
        return None
    try:
        schedule: Any = parse_cron(expression)  # celery-types does not know its parsed sets
    except ValidationError:
        return None
    zone = zoneinfo.ZoneInfo(tz or settings.TIME_ZONE)
    local = after.astimezone(zone)
    start = (local + timedelta(minutes=1)).replace(second=0, microsecond=0)
    hours = sorted(schedule.hour)
    minutes = sorted(schedule.minute)
    day: date = start.date()
    for _ in range(_HORIZON_DAYS):
        if (
            day.month in schedule.month_of_year
            and day.day in schedule.day_of_month
            and day.isoweekday() % 7 in schedule.day_of_week
        ):
            first = start.time() if day == start.date() else time(0, 0)
            for hour in hours:
                if hour < first.hour:
                    continue
                for minute in minutes:
                    if (hour, minute) < (first.hour, first.minute):
                        continue
                    moment = datetime.combine(day, time(hour, minute), tzinfo=zone)
                    # A wall time a DST change skips reads with the offset before the change
                    # (02:30 on the spring day is 03:30 summer time), as zoneinfo reads it.
                    if moment.astimezone(zoneinfo.ZoneInfo("UTC")) > after:
                        return moment
        day += timedelta(days=1)
    return None

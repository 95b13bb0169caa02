"""Account discovery's schedule: it exists after every migrate (an admin's change is kept)."""

from typing import Any

from jobs import schedules


def ensure(sender: Any, **kwargs: Any) -> None:
    schedules.ensure_discovery_schedule()

"""When a destination last passed (or failed) Validate, kept true to its saved settings.

Validate on the page checks what the form holds, saved or not. Its result is recorded on the
destination only for exactly the settings that are saved: at once when they match, or on Save
when the admin saves the settings they just validated (remembered in the session as a keyed
digest, never the password itself). Saving other connection settings forgets the old result,
which described a server the destination no longer points to.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.crypto import salted_hmac

from .models import Destination

SESSION_KEY = "destinations.validated"
# Settings that do not change what Validate finds.
_IRRELEVANT = {"retries"}


def digest(destination: Destination) -> str:
    """A keyed digest of the settings Validate checks (the password included, unreadably)."""
    settings = dataclasses.asdict(destination.ftp_settings())
    relevant = sorted((k, v) for k, v in settings.items() if k not in _IRRELEVANT)
    material = repr((relevant, destination.read_only))
    return salted_hmac("backupsite.destinations.validated", material).hexdigest()


def record(pk: int, at: datetime | None, ok: bool | None) -> None:
    Destination.objects.filter(pk=pk).update(validated_at=at, validated_ok=ok)


def remember(session: Any, candidate: Destination, ok: bool, *, saved_digest: str | None) -> bool:
    """After Validate from the page: keep the result for the settings checked; record it on
    the saved destination when those are its saved settings. Answers whether it was recorded."""
    now = timezone.now()
    checked = digest(candidate)
    session[SESSION_KEY] = {"digest": checked, "at": now.isoformat(), "ok": ok}
    if candidate.pk is not None and saved_digest == checked:
        record(candidate.pk, now, ok)
        return True
    return False


def after_save(session: Any, destination: Destination, *, before: str | None) -> None:
    """After Save: a Validate of exactly these settings carries over; changed settings forget
    the result of the old ones."""
    saved = digest(destination)
    seen = session.get(SESSION_KEY) or {}
    if seen.get("digest") == saved:
        at = datetime.fromisoformat(seen["at"])
        record(destination.pk, at, bool(seen["ok"]))
        destination.validated_at, destination.validated_ok = at, bool(seen["ok"])
    elif before is not None and before != saved:
        record(destination.pk, None, None)
        destination.validated_at = destination.validated_ok = None

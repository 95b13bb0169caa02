"""FTP sessions to a destination as workers open them: its settings, its connection cap.

Every connection the panel opens to a destination goes through here (backups, rotation,
reindex, restores and downloads with open_session, Validate with validate_destination), so
that the destination's `concurrency` holds for all of them together.
"""

from django.conf import settings

from . import validate
from .ftp import FtpSession
from .ftp.leases import ConnectionLeases
from .models import Destination


def open_session(destination: Destination) -> FtpSession:
    """A session of up to `concurrency` connections, holding leases in Redis so that all
    workers together respect the cap; the backup directory is created when missing unless the
    destination is read only."""
    return FtpSession(
        destination.ftp_settings(),
        max_connections=destination.concurrency or None,
        lease_key=destination.lease_key if destination.concurrency else None,
        redis_url=settings.REDIS_URL,
        lease_ttl=float(settings.LEASE_TTL),
        create_root=not destination.read_only,
    )


def connection_leases(destination: Destination) -> ConnectionLeases | None:
    """The destination's connection cap (None: unlimited, or a destination not saved yet)."""
    if not destination.concurrency or destination.pk is None:
        return None
    return ConnectionLeases.from_url(
        settings.REDIS_URL, destination.lease_key, destination.concurrency, ttl=float(settings.LEASE_TTL)
    )


def validate_destination(destination: Destination, *, holder: str = "Validate") -> validate.Report:
    """Validate `destination` (saved, or the unsaved values of its form) within its
    connection cap: it waits up to the destination's timeout for a free connection."""
    return validate.run(
        destination.ftp_settings(),
        read_only=destination.read_only,
        leases=connection_leases(destination),
        holder=holder,
    )

"""FTP sessions to a destination as workers open them: its settings, its connection cap."""

from django.conf import settings

from .ftp import FtpSession
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

"""Saved Destinations on a test FTP server (the `pure_ftpd` fixture, a `fault_ftp_server`), in
the test's own folder (`ftp_dir`) when it has one."""

from __future__ import annotations

import secrets
from typing import Any

from destinations.models import Destination, Engine


def make_destination(server: Any, ftp_dir: str = "", **fields: Any) -> Destination:
    """A saved destination that logs in to `server` (anything with host, port, user and
    password); `fields` are the rest of its settings."""
    destination = Destination(
        host=server.host,
        port=server.port,
        username=server.user,
        directory=ftp_dir,
        **fields,
    )
    destination.set_password(server.password)
    destination.save()
    return destination


def make_cpanel_destination(pure_ftpd: Any, ftp_dir: str, **fields: Any) -> Destination:
    """A read-only cPanel destination over TLS, two connections at once; `fields` add to or
    override that."""
    defaults: dict[str, Any] = {
        "name": f"cpanel-{secrets.token_hex(3)}",
        "engine": Engine.CPANEL,
        "ssl": True,
        "tls_fingerprint": pure_ftpd.fingerprint,
        "read_only": True,
        "concurrency": 2,
    }
    return make_destination(pure_ftpd, ftp_dir, **(defaults | fields))

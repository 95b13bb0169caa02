"""Saved Destinations on the test pure-ftpd server (the `pure_ftpd` fixture), in the test's
own folder (`ftp_dir`)."""

from __future__ import annotations

import secrets
from typing import Any

from destinations.models import Destination, Engine


def make_destination(pure_ftpd: Any, ftp_dir: str, **fields: Any) -> Destination:
    """A saved destination that logs in to pure-ftpd; `fields` are the rest of its settings."""
    destination = Destination(
        host=pure_ftpd.host,
        port=pure_ftpd.port,
        username=pure_ftpd.user,
        directory=ftp_dir,
        **fields,
    )
    destination.set_password(pure_ftpd.password)
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

"""Many short ranged reads in a row, plain and over explicit TLS: each ends when its bytes are
in, and the next starts at once (no wait for a reply that an aborted transfer never sends)."""

from __future__ import annotations

import io
import os
import time

import pytest

from destinations.ftp import FtpConnection
from tests.support.ftp_servers import PureFtpd

pytestmark = pytest.mark.peer

PACK = os.urandom(16 * 1024 * 1024)
PIECE = 22 * 1024


@pytest.mark.parametrize(
    ("tls", "passive"),
    [
        pytest.param(False, True, id="plain-passive"),
        pytest.param(False, False, id="plain-active"),
        pytest.param(True, True, id="tls-passive"),
        pytest.param(True, False, id="tls-active"),
    ],
)
def test_fifty_short_ranged_reads_each_finish_well_under_the_timeout(
    pure_ftpd: PureFtpd, ftp_dir: str, tls: bool, passive: bool
) -> None:
    """
    GIVEN a 16 MiB pack on pure-ftpd
    WHEN 50 pieces of 22 KiB are read from its start, middle and end, one after the other
    THEN each read returns its exact bytes and takes a small part of the timeout: the cut
    transfer settles at once (before, over TLS the server noticed the cut only at its timeout)
    """
    settings = pure_ftpd.settings(
        directory=ftp_dir, ssl=tls, passive=passive, tls_fingerprint=pure_ftpd.fingerprint if tls else ""
    )
    with FtpConnection(settings, create_root=True) as conn:
        conn.upload_file("pack", io.BytesIO(PACK))
        offsets = [0, len(PACK) // 2, len(PACK) - PIECE] * 17
        slowest = 0.0
        for i, offset in enumerate(offsets[:50]):
            started = time.monotonic()
            got = b"".join(conn.download("pack", offset=offset, length=PIECE))
            took = time.monotonic() - started
            slowest = max(slowest, took)
            assert got == PACK[offset : offset + PIECE], f"read {i} at {offset}"
        # a read that waits for the server to notice the cut takes the whole timeout
        assert slowest < settings.timeout / 2, f"the slowest of 50 reads took {slowest:.1f} s"

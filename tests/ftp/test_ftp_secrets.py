"""The FTP password never shows: not in logs, not in reprs, not in error messages."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

import pytest

from destinations.ftp import FtpConnection, FtpError, LoginFailed, TlsRequired
from tests.support.ftp_servers import EchoingPass, InProcessFtpServer, PureFtpd

FaultServer = Callable[..., InProcessFtpServer]


@pytest.mark.peer
def test_password_stays_out_of_debug_logs_and_reprs(
    pure_ftpd: PureFtpd,
    pure_ftpd_tls_required: PureFtpd,
    fault_ftp_server: FaultServer,
    ftp_dir: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="aioftp")  # settings quiet it; a test must hear it
    secrets = [pure_ftpd.password, pure_ftpd_tls_required.password, "Wr0ng-Pa55word-77"]
    errors: list[FtpError] = []
    for tls in (False, True):
        settings = pure_ftpd.settings(
            directory=ftp_dir, ssl=tls, tls_fingerprint=pure_ftpd.fingerprint if tls else ""
        )
        with FtpConnection(settings, create_root=True) as conn:
            conn.upload_file("f", io.BytesIO(b"data"))
            conn.listdir()
            texts = [repr(settings), str(settings), repr(conn)]
    with pytest.raises(TlsRequired) as refused:
        FtpConnection(pure_ftpd_tls_required.settings(ssl=False))
    errors.append(refused.value)
    careless = fault_ftp_server(EchoingPass)
    with pytest.raises(LoginFailed) as echoed:
        FtpConnection(careless.settings(password="Wr0ng-Pa55word-77"))
    errors.append(echoed.value)

    # what the client logged (the in-process fake server's own log is not ours to judge)
    client_log = "\n".join(
        f"{record.name} {record.getMessage()}"
        for record in caplog.records
        if not record.name.startswith("pyftpdlib")
    )
    assert "aioftp.client USER " in client_log  # the wire log is on: a leak would show
    texts += [client_log] + [f"{error!s} {error!r} {error.hint}" for error in errors]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert "***" in str(echoed.value)  # the echoed password was scrubbed

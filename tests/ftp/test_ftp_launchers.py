"""The test-server launchers fail loudly instead of leaving a test to time out."""

from __future__ import annotations

import pytest

from tests.support.ftp_servers import PeerUnavailable, PureFtpd
from tests.support.peers import require_binary


@pytest.mark.peer
def test_pure_ftpd_that_cannot_start_is_reported_with_its_command_line() -> None:
    require_binary("pure-ftpd")
    with pytest.raises(PeerUnavailable, match="did not start") as caught:
        PureFtpd(tls=0, extra_args=("--no-such-flag",)).start()
    assert "--no-such-flag" in str(caught.value)
    assert "252" in str(caught.value)


@pytest.mark.peer
def test_pure_ftpd_keeps_real_server_defaults(pure_ftpd: PureFtpd) -> None:
    """No -D: a plain LIST hides dot files, as on real destinations (the client must cope)."""
    import ftplib

    (pure_ftpd.root / ".hidden").write_text("x")
    try:
        with ftplib.FTP() as client:  # noqa: S321 - the stdlib client as a neutral observer
            client.connect(pure_ftpd.host, pure_ftpd.port, timeout=5)
            client.login(pure_ftpd.user, pure_ftpd.password)
            lines: list[str] = []
            client.retrlines("LIST", lines.append)
            assert not any(line.endswith(" .hidden") for line in lines)
    finally:
        (pure_ftpd.root / ".hidden").unlink()

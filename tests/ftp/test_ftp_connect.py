"""Connecting, logging in and TLS: what the admin sees when a destination is wrong."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from destinations.ftp import (
    CertificateMismatch,
    CertificateUntrusted,
    ConnectFailed,
    DirectoryMissing,
    FtpConnection,
    FtpTimeout,
    LoginFailed,
    TlsFailed,
    TlsRequired,
    TransientError,
    UnsupportedServer,
    connect_once,
)
from tests.support.ftp_servers import (
    InProcessFtpServer,
    PureFtpd,
    RefuseFirstConnections,
    SilentServer,
    WindowsSyst,
    closed_port,
)

FaultServer = Callable[..., InProcessFtpServer]


@pytest.fixture
def no_quick_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any retry would now wait seconds: a test finishing fast proves there was none."""
    monkeypatch.setattr("destinations.ftp.connection.RETRY_BASE_DELAY", 5.0)


def test_windows_server_is_refused_with_a_clear_message(fault_ftp_server: FaultServer) -> None:
    server = fault_ftp_server(WindowsSyst)
    with pytest.raises(UnsupportedServer) as caught:
        FtpConnection(server.settings())
    assert caught.value.message == "Windows-hosted FTP servers are not supported as backup destinations"
    assert "Windows_NT" in caught.value.hint
    assert server.state.connections == 1  # refused, not retried


def test_wrong_password_fails_at_once_and_is_not_retried(
    fault_ftp_server: FaultServer, no_quick_retry: None
) -> None:
    server = fault_ftp_server()
    started = time.monotonic()
    with pytest.raises(LoginFailed, match="username or password"):
        FtpConnection(server.settings(password="not-the-password", retries=5))
    assert time.monotonic() - started < 2
    assert (server.state.connections, server.state.login_attempts) == (1, 1)


def test_refused_connections_are_retried_up_to_retries_times(
    fault_ftp_server: FaultServer, fast_retries: None
) -> None:
    """GIVEN a server that answers "421 Too many connections" three times, THEN retries=3 gets in."""
    server = fault_ftp_server(RefuseFirstConnections, faults=3)
    with FtpConnection(server.settings(retries=3)) as conn:
        assert conn.listdir() == []
    assert server.state.connections == 4


def test_retries_stop_after_the_configured_number(fault_ftp_server: FaultServer, fast_retries: None) -> None:
    server = fault_ftp_server(RefuseFirstConnections, faults=10)
    with pytest.raises(TransientError, match="421"):
        FtpConnection(server.settings(retries=2))
    assert server.state.connections == 3


def test_connect_once_makes_a_single_attempt(fault_ftp_server: FaultServer, no_quick_retry: None) -> None:
    server = fault_ftp_server(RefuseFirstConnections, faults=10)
    with pytest.raises(Exception, match="421 Too many connections"):
        connect_once(server.settings(retries=5))
    assert server.state.connections == 1


def test_closed_port_fails_with_connect_failed(no_quick_retry: None) -> None:
    with closed_port() as port, pytest.raises(ConnectFailed) as caught:
        connect_once(PureFtpd().settings(host="127.0.0.1", port=port))
    assert f"127.0.0.1:{port}" in caught.value.message
    assert caught.value.hint


def test_closed_port_is_retried_then_fails(monkeypatch: pytest.MonkeyPatch, fast_retries: None) -> None:
    attempts: list[int] = []

    def no_delay(attempt: int) -> float:
        attempts.append(attempt)
        return 0.0

    monkeypatch.setattr("destinations.ftp.connection._retry_delay", no_delay)
    with closed_port() as port, pytest.raises(ConnectFailed):
        FtpConnection(PureFtpd().settings(port=port, retries=3))
    assert attempts == [1, 2, 3]


def test_silent_server_fails_within_the_timeout(silent_ftp_server: SilentServer) -> None:
    """A server that accepts TCP and never greets must not hang a worker."""
    started = time.monotonic()
    with pytest.raises((FtpTimeout, ConnectFailed)) as caught:
        connect_once(silent_ftp_server.settings(timeout=1.0))
    assert time.monotonic() - started < 1.0 + 1.0
    assert "greeting" in caught.value.message


def test_backoff_grows_and_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    from destinations.ftp import connection as ftp

    monkeypatch.setattr(ftp, "RETRY_BASE_DELAY", 1.0)
    monkeypatch.setattr(ftp, "RETRY_MAX_DELAY", 30.0)
    assert 0.5 <= ftp._retry_delay(1) <= 1.0
    assert 4.0 <= ftp._retry_delay(4) <= 8.0
    assert 15.0 <= ftp._retry_delay(20) <= 30.0


@pytest.mark.peer
def test_missing_directory_is_reported_unless_creation_is_asked(pure_ftpd: PureFtpd, ftp_dir: str) -> None:
    with pytest.raises(DirectoryMissing, match=ftp_dir):
        connect_once(pure_ftpd.settings(directory=f"{ftp_dir}/backups"))
    with connect_once(pure_ftpd.settings(directory=f"/{ftp_dir}/backups/"), create_root=True) as conn:
        assert conn.root == f"/{ftp_dir}/backups"
    assert (pure_ftpd.root / ftp_dir / "backups").is_dir()


# --- TLS ---------------------------------------------------------------------------------------


@pytest.mark.peer
def test_tls_required_but_off_says_to_enable_it(
    pure_ftpd_tls_required: PureFtpd, no_quick_retry: None
) -> None:
    started = time.monotonic()
    with pytest.raises(TlsRequired) as caught:
        FtpConnection(pure_ftpd_tls_required.settings(ssl=False))
    assert "requires TLS" in caught.value.message
    assert "explicit SSL-FTP" in caught.value.hint
    assert time.monotonic() - started < 2  # not retried


@pytest.mark.peer
def test_tls_required_server_works_with_tls(pure_ftpd_tls_required: PureFtpd) -> None:
    server = pure_ftpd_tls_required
    with FtpConnection(server.settings(ssl=True, tls_fingerprint=server.fingerprint)) as conn:
        assert conn.listdir() == []


def test_tls_against_a_server_without_tls_fails_clearly(fault_ftp_server: FaultServer) -> None:
    server = fault_ftp_server()  # pyftpdlib's plain handler knows no AUTH
    with pytest.raises(TlsFailed, match="does not offer TLS") as caught:
        FtpConnection(server.settings(ssl=True))
    assert server.state.connections == 1
    assert "SSL-FTP" in caught.value.hint


@pytest.mark.peer
def test_self_signed_certificate_is_untrusted_and_its_fingerprint_offered(pure_ftpd: PureFtpd) -> None:
    with pytest.raises(CertificateUntrusted) as caught:
        connect_once(pure_ftpd.settings(ssl=True))
    assert caught.value.fingerprint == pure_ftpd.fingerprint
    assert pure_ftpd.fingerprint in caught.value.hint
    assert "not trusted" in caught.value.message


@pytest.mark.peer
def test_pinned_fingerprint_is_accepted_in_any_spelling(pure_ftpd: PureFtpd) -> None:
    bare = pure_ftpd.fingerprint.removeprefix("sha256:").replace(":", "").lower()
    with connect_once(pure_ftpd.settings(ssl=True, tls_fingerprint=bare)) as conn:
        assert conn.fingerprint == pure_ftpd.fingerprint


@pytest.mark.peer
def test_wrong_pin_is_a_mismatch_naming_both_fingerprints(pure_ftpd: PureFtpd) -> None:
    wrong = "sha256:" + ":".join(["AB"] * 32)
    with pytest.raises(CertificateMismatch) as caught:
        connect_once(pure_ftpd.settings(ssl=True, tls_fingerprint=wrong))
    assert caught.value.fingerprint == pure_ftpd.fingerprint
    assert caught.value.expected == wrong
    assert pure_ftpd.fingerprint in caught.value.message
    assert wrong in caught.value.message

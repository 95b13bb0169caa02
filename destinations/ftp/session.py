"""Sessions: a few FtpConnections to one destination, reused for the life of a task, each
holding a lease under the destination's connection cap (leases.py) when one is set."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType

from .connection import FtpConnection
from .errors import DestinationBusy, FtpError
from .interface import FtpSettings
from .leases import BUSY_HINT, ConnectionLeases, current_holder, current_wait_notice

logger = logging.getLogger(__name__)

LEASE_POLL_MIN = 0.02  # seconds between tries for a connection lease, growing to LEASE_POLL_MAX
LEASE_POLL_MAX = 0.25


class FtpSession:
    """Up to `max_connections` FtpConnections (None/0: unlimited), opened lazily and reused.

    With `lease_key`, every opened connection first takes a lease from Redis at `redis_url`,
    so that all workers together keep at most `lease_limit` (default: `max_connections`)
    connections to the destination. `with session.connection() as conn:` borrows one, waiting
    until one is free; closing the session closes them all and releases their leases.
    """

    def __init__(
        self,
        settings: FtpSettings,
        *,
        max_connections: int | None = None,
        lease_key: str | None = None,
        redis_url: str | None = None,
        lease_limit: int | None = None,
        lease_timeout: float | None = None,
        lease_ttl: float = 60.0,
        create_root: bool = False,
        holder: str | None = None,
    ) -> None:
        self.settings = settings
        self.max_connections = max_connections or 0
        self.lease_timeout = lease_timeout
        self.holder = holder  # None: the holding_for() description where the session opens
        self._wait_notice: Callable[[str], None] | None = None
        self._wait_noticed = False
        self._create_root = create_root
        self._cond = threading.Condition()
        self._idle: list[FtpConnection] = []
        self._open: list[FtpConnection] = []
        self._opening = 0
        self._closed = False
        self._leases: ConnectionLeases | None = None
        limit = lease_limit if lease_limit is not None else self.max_connections
        if lease_key and limit:
            if not redis_url:
                raise ValueError("connection leases (a lease_key) need the redis_url that holds them")
            self._leases = ConnectionLeases.from_url(redis_url, lease_key, limit, ttl=lease_ttl)
            # Connections are opened by the task's transfer threads too, which do not
            # inherit its context: take the description now.
            if self.holder is None:
                self.holder = current_holder()
            self._wait_notice = current_wait_notice()

    def __repr__(self) -> str:
        return f"<FtpSession {self.settings.host}:{self.settings.port} {len(self._open)} open>"

    def __enter__(self) -> FtpSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def connection(self) -> Iterator[FtpConnection]:
        connection = self._borrow()
        try:
            yield connection
        finally:
            self._give_back(connection)

    def _borrow(self) -> FtpConnection:
        lease = None
        started = time.monotonic()
        deadline = None if self.lease_timeout is None else started + self.lease_timeout
        poll = LEASE_POLL_MIN
        with self._cond:
            while True:
                if self._closed:
                    raise FtpError("this FTP session is closed")
                if self._idle:
                    return self._idle.pop()
                wait: float | None = None
                if not self.max_connections or len(self._open) + self._opening < self.max_connections:
                    if self._leases is None:
                        break
                    # Poll for a lease here rather than block in acquire(): a connection that
                    # another thread of this session gives back must wake us. Otherwise two
                    # workers, each holding one idle lease and waiting for a second, deadlock.
                    lease = self._leases.try_acquire(self.holder)
                    if lease is not None:
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        raise DestinationBusy(self._leases.busy_message(self.lease_timeout or 0.0), BUSY_HINT)
                    if time.monotonic() - started >= self.settings.timeout:
                        self._notice_waiting()
                    wait = random.uniform(poll / 2, poll)
                    poll = min(LEASE_POLL_MAX, poll * 2)
                self._cond.wait(timeout=wait)
            self._opening += 1
        try:
            connection = FtpConnection(self.settings, lease=lease, create_root=self._create_root)
        except BaseException:
            if lease is not None:
                lease.release()
            with self._cond:
                self._opening -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._opening -= 1
            self._open.append(connection)
        return connection

    def _notice_waiting(self) -> None:
        """Tell the work that waits (its queue item's log), once, who holds the connections:
        a restore queued behind a long backup should not look stuck."""
        if self._wait_noticed or self._wait_notice is None or self._leases is None:
            return
        self._wait_noticed = True
        try:
            self._wait_notice(f"Waiting for a connection: {self._leases.in_use_message()}.")
        except Exception:
            logger.warning("could not report the wait for a connection lease", exc_info=True)

    def _give_back(self, connection: FtpConnection) -> None:
        with self._cond:
            discard = self._closed or connection._closed
            if discard:
                with contextlib.suppress(ValueError):
                    self._open.remove(connection)
            else:
                self._idle.append(connection)
            self._cond.notify()
        if discard:
            connection.close()

    def close(self) -> None:
        """Close every idle connection now, and borrowed ones when they come back."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            for connection in idle:
                self._open.remove(connection)
            self._cond.notify_all()
        for connection in idle:
            try:
                connection.close()
            except Exception:
                logger.warning("closing an FTP connection failed", exc_info=True)

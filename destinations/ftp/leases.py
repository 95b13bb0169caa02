"""A cap on simultaneous FTP connections per destination, across worker processes and machines.

Many FTP servers refuse more than a few connections per user (pure-ftpd's -C, vsftpd's
max_per_ip), and a refused login in the middle of a backup is a failed backup. So every
connection first takes a lease from Redis:

- A sorted set per destination holds one member per lease: a random token scored by its
  expiry time (Redis server time, in milliseconds, so clocks of workers do not matter).
- Acquiring is one Lua script: drop expired members, count, add when below the limit.
- A live holder never loses its lease: one heartbeat thread per process renews every held
  lease every ttl/3. A crashed or killed worker stops renewing, and its leases expire after
  `ttl` seconds, freeing the slots for others.
- Each lease carries a short description of its holder ("Backup #12 (nightly)") in a hash
  beside the set, so that whoever waits in vain is told which work holds the connections.
  The work being done is set once per task with `holding_for()` (a context variable), so the
  FTP code that takes the leases needs to know nothing about queue items.

limit 0 means unlimited: no Redis traffic at all.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import random
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from backupsite.errors import Error

logger = logging.getLogger(__name__)

POLL_MIN = 0.02  # seconds between acquire attempts, growing to POLL_MAX, jittered
POLL_MAX = 0.25

# KEYS[1] = the set, KEYS[2] = its holders (token -> description).
# ARGV = limit, ttl_ms, token, holder. Returns 1 when the lease was taken.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('HDEL', KEYS[2], unpack(expired))
end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

# KEYS[1] = the set, KEYS[2] = its holders; ARGV = ttl_ms, token. Returns 0 when the lease
# had already expired.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not expiry or tonumber(expiry) <= now then
  redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[2])
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
for _, key in ipairs(KEYS) do
  if redis.call('PTTL', key) < tonumber(ARGV[1]) then
    redis.call('PEXPIRE', key, ARGV[1])
  end
end
return 1
"""

# KEYS[1] = the set. Returns the number of live leases.
_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""

# KEYS[1] = the set, KEYS[2] = its holders. Returns the live leases' holders (false where a
# holder left no description).
_HOLDERS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tokens = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
if #tokens == 0 then
  return {}
end
return redis.call('HMGET', KEYS[2], unpack(tokens))
"""

_holder: contextvars.ContextVar[str] = contextvars.ContextVar("connection_lease_holder", default="")
_on_wait: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "connection_lease_wait_notice", default=None
)


@contextlib.contextmanager
def holding_for(description: str, *, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Leases taken inside (in this thread or context) say they are held for `description`;
    `on_wait` is told, once, when work that waits without a deadline has waited long."""
    reset = _holder.set(description[:120])
    reset_wait = _on_wait.set(on_wait)
    try:
        yield
    finally:
        _on_wait.reset(reset_wait)
        _holder.reset(reset)


def current_holder() -> str:
    """The description leases taken now carry ("" outside holding_for)."""
    return _holder.get()


def current_wait_notice() -> Callable[[str], None] | None:
    """Who to tell that a lease is long in coming (None outside holding_for)."""
    return _on_wait.get()


class LeaseTimeout(Error):
    """No connection slot became free within the timeout."""


class Lease:
    """One connection slot. Release it when the connection closes (or use `with`)."""

    def __init__(self, owner: ConnectionLeases | None, token: str = "") -> None:
        self._owner = owner
        self.token = token
        self.lost = False  # set when a renewal found the lease already expired
        self.released = owner is None

    @property
    def key(self) -> str:
        return self._owner.key if self._owner else ""

    def renew(self) -> bool:
        if self._owner is None or self.released:
            return True
        ok = bool(self._owner._renew(self.token))
        if not ok and not self.lost:
            self.lost = True
            logger.warning(
                "connection lease on %s expired before renewal (was the process stalled?)", self.key
            )
        return ok

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        _heartbeat.forget(self)
        if self._owner is not None:
            try:
                self._owner._release(self.token)
            except Exception:  # Redis unreachable: the lease expires after ttl anyway
                logger.warning("could not release connection lease on %s", self.key, exc_info=True)

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self.released else "held"
        return f"<Lease {self.key or 'unlimited'} {state}>"


class ConnectionLeases:
    """At most `limit` leases on `key` at once, for every process sharing the Redis server."""

    def __init__(self, redis_client: Any, key: str, limit: int, ttl: float = 60.0) -> None:
        if limit < 0:
            raise ValueError("limit must be 0 (unlimited) or more")
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.redis = redis_client
        self.key = key
        self.holders_key = f"{key}:holders"
        self.limit = limit
        self.ttl = ttl
        self._ttl_ms = max(1, int(ttl * 1000))
        if limit:
            self._acquire_script = redis_client.register_script(_ACQUIRE)
            self._renew_script = redis_client.register_script(_RENEW)
            self._count_script = redis_client.register_script(_COUNT)
            self._holders_script = redis_client.register_script(_HOLDERS)

    @classmethod
    def from_url(cls, url: str, key: str, limit: int, ttl: float = 60.0) -> ConnectionLeases:
        import redis

        return cls(redis.Redis.from_url(url), key, limit, ttl)

    def try_acquire(self, holder: str | None = None) -> Lease | None:
        """A lease now, or None when all are taken. `holder` (default: the current
        holding_for() description) says which work holds it, for those who wait."""
        if not self.limit:
            return Lease(None)
        token = f"{os.getpid()}-{secrets.token_hex(8)}"
        description = (holder if holder is not None else current_holder()) or f"process {os.getpid()}"
        keys = [self.key, self.holders_key]
        if not self._acquire_script(keys=keys, args=[self.limit, self._ttl_ms, token, description[:120]]):
            return None
        lease = Lease(self, token)
        _heartbeat.track(lease, self.ttl / 3)
        return lease

    def acquire(self, timeout: float | None = None, holder: str | None = None) -> Lease:
        """Wait for a free slot (forever when timeout is None); LeaseTimeout when none frees up."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = POLL_MIN
        while True:
            lease = self.try_acquire(holder)
            if lease is not None:
                return lease
            if deadline is not None and time.monotonic() >= deadline:
                raise LeaseTimeout(self.busy_message(timeout or 0.0), hint=BUSY_HINT)
            sleep = random.uniform(delay / 2, delay)
            if deadline is not None:
                sleep = min(sleep, max(0.0, deadline - time.monotonic()))
            time.sleep(sleep)
            delay = min(POLL_MAX, delay * 2)

    def in_use(self) -> int:
        """Live leases right now (expired ones are dropped first)."""
        if not self.limit:
            return 0
        return int(self._count_script(keys=[self.key]))

    def holders(self) -> list[str]:
        """Who holds the live leases, sorted ("unknown work" where none was said)."""
        if not self.limit:
            return []
        found = self._holders_script(keys=[self.key, self.holders_key])
        return sorted(
            (raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)) if raw else "unknown work"
            for raw in found
        )

    def in_use_message(self) -> str:
        """ "All 2 connections to this destination are in use by: Backup #12 (nightly), ..."."""
        try:
            holders = self.holders()
        except Exception:  # Redis unreachable: say what is known
            holders = []
        counted = ", ".join(f"{name} ({n} connections)" if n > 1 else name for name, n in _tally(holders))
        held = f" are in use by: {counted}" if counted else " are in use"
        return f"All {self.limit} connections to this destination{held}"

    def busy_message(self, waited: float) -> str:
        """Why no lease came: how many connections are allowed and which work holds them."""
        return (
            f"{self.in_use_message()}; none freed up within {waited:g} s "
            f"(the destination allows {self.limit} at once)"
        )

    def _renew(self, token: str) -> int:
        return int(self._renew_script(keys=[self.key, self.holders_key], args=[self._ttl_ms, token]))

    def _release(self, token: str) -> None:
        pipe = self.redis.pipeline()
        pipe.zrem(self.key, token)
        pipe.hdel(self.holders_key, token)
        pipe.execute()


BUSY_HINT = (
    "Other work is using this destination; try again when it is done, or raise the destination's "
    "connection limit if the FTP server allows more."
)


def _tally(holders: list[str]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for name in holders:
        counts[name] = counts.get(name, 0) + 1
    return list(counts.items())


class _Heartbeat:
    """One daemon thread per process that renews every held lease before it expires.

    Leases are held weakly: a lease dropped without release() stops being renewed and expires.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._leases: weakref.WeakKeyDictionary[Lease, list[float]] = weakref.WeakKeyDictionary()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def track(self, lease: Lease, interval: float) -> None:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's thread and leases are not ours
                self._leases = weakref.WeakKeyDictionary()
                self._thread = None
                self._pid = os.getpid()
            self._leases[lease] = [interval, time.monotonic() + interval]
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="connection-lease-heartbeat", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def forget(self, lease: Lease) -> None:
        with self._lock:
            self._leases.pop(lease, None)

    def _run(self) -> None:
        while True:
            self._renew_due()
            with self._lock:
                next_due = min(
                    (timing[1] for timing in self._leases.values()), default=time.monotonic() + 5.0
                )
            self._wake.wait(timeout=max(0.01, next_due - time.monotonic()))
            self._wake.clear()

    def _renew_due(self) -> None:
        # A function of its own so that no frame of the thread keeps a lease alive while it
        # sleeps: a lease its owner dropped must expire, not be renewed forever.
        with self._lock:
            now = time.monotonic()
            due = [lease for lease, timing in self._leases.items() if timing[1] <= now]
            for lease in due:
                self._leases[lease][1] = now + self._leases[lease][0]
        for lease in due:
            try:
                if not lease.renew():
                    self.forget(lease)
            except Exception:  # Redis briefly unreachable: try again next round
                logger.warning("could not renew connection lease on %s", lease.key, exc_info=True)


_heartbeat = _Heartbeat()

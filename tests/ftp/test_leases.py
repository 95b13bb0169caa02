"""Connection leases in Redis: a cap per destination that holds across processes."""

from __future__ import annotations

import multiprocessing
import secrets
import time
from typing import Any

import pytest

from destinations.ftp.leases import ConnectionLeases, LeaseTimeout

pytestmark = pytest.mark.peer


@pytest.fixture
def key() -> str:
    return f"test:leases:{secrets.token_hex(6)}"


def test_at_most_limit_leases_are_held(redis_client: Any, key: str) -> None:
    leases = ConnectionLeases(redis_client, key, limit=2)
    first, second = leases.acquire(timeout=1), leases.acquire(timeout=1)
    assert leases.try_acquire() is None
    assert leases.in_use() == 2
    first.release()
    third = leases.acquire(timeout=1)
    assert leases.in_use() == 2
    second.release()
    third.release()
    assert leases.in_use() == 0


def test_acquire_gives_up_after_the_timeout_with_a_clear_error(redis_client: Any, key: str) -> None:
    leases = ConnectionLeases(redis_client, key, limit=1)
    with leases.acquire(timeout=1):
        started = time.monotonic()
        with pytest.raises(LeaseTimeout, match="allows 1 at once"):
            leases.acquire(timeout=0.3)
        assert 0.3 <= time.monotonic() - started < 1.0


def test_a_waiting_acquire_gets_the_slot_when_it_is_released(redis_client: Any, key: str) -> None:
    import threading

    leases = ConnectionLeases(redis_client, key, limit=1)
    held = leases.acquire(timeout=1)
    threading.Timer(0.2, held.release).start()
    started = time.monotonic()
    with leases.acquire(timeout=5):
        assert time.monotonic() - started < 1.0


def test_limit_zero_means_unlimited_without_touching_redis(key: str) -> None:
    class NoRedis:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"Redis was used: {name}")

    leases = ConnectionLeases(NoRedis(), key, limit=0)
    held = [leases.acquire(timeout=0) for _ in range(100)]
    for lease in held:
        lease.release()


def hold_a_lease(redis_url: str, key: str, ttl: float, ready: Any) -> None:
    """Runs in a spawned process: take a lease, say so, and live until killed."""
    leases = ConnectionLeases.from_url(redis_url, key, limit=1, ttl=ttl)
    lease = leases.acquire(timeout=5)
    ready.set()
    time.sleep(600)
    lease.release()


def test_a_live_holder_keeps_its_lease_and_a_killed_ones_expires_after_ttl(redis_url: str, key: str) -> None:
    """
    GIVEN a worker process holding the only lease, with ttl 1 s
    WHEN it stays alive for 1.6 ttl, THEN nobody else gets the slot (its heartbeat renews it)
    WHEN it is killed (SIGKILL: no release), THEN the slot frees up within ttl
    """
    ttl = 1.0
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=hold_a_lease, args=(redis_url, key, ttl, ready), daemon=True)
    holder.start()
    try:
        assert ready.wait(timeout=30), "the holder process did not start"
        leases = ConnectionLeases.from_url(redis_url, key, limit=1, ttl=ttl)
        time.sleep(1.6 * ttl)
        intruder = leases.try_acquire()
        assert intruder is None, "the live holder lost its lease"
        holder.kill()
        holder.join(timeout=5)
        killed = time.monotonic()
        lease = leases.acquire(timeout=3 * ttl)
        assert time.monotonic() - killed <= ttl + 0.3
        lease.release()
    finally:
        if holder.is_alive():
            holder.kill()
            holder.join(timeout=5)


def test_a_lease_dropped_without_release_stops_renewing_and_expires(redis_client: Any, key: str) -> None:
    """A caller that loses its lease (a bug) blocks the slot for ttl at most, not forever."""
    import gc

    leases = ConnectionLeases(redis_client, key, limit=1, ttl=0.5)
    lease = leases.acquire(timeout=1)
    time.sleep(0.3)  # renewed at least once by the heartbeat
    assert leases.in_use() == 1
    del lease
    gc.collect()
    time.sleep(0.8)
    assert leases.in_use() == 0

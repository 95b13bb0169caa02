"""Connection leases say which work holds them, and forget holders whose leases are gone."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest

from destinations.ftp.leases import ConnectionLeases, LeaseTimeout, holding_for

pytestmark = pytest.mark.peer


def test_holders_are_named_released_and_expired_holders_forgotten(redis_client: Any) -> None:
    """
    GIVEN leases taken for a backup (by holding_for) and for a Validate (named explicitly)
    WHEN one is released and another one, dropped by a dead worker, expires
    THEN holders() names exactly the live ones, the timeout message names them, and the
         holder hash keeps no entry for a lease that is gone
    """
    key = f"test:holders:{secrets.token_hex(6)}"
    leases = ConnectionLeases(redis_client, key, limit=2, ttl=0.5)
    with holding_for("Backup #12 (nightly)"):
        backup = leases.acquire(timeout=1)
    validate = leases.acquire(timeout=1, holder="Validate by admin")
    assert leases.holders() == ["Backup #12 (nightly)", "Validate by admin"]
    with pytest.raises(LeaseTimeout) as caught:
        leases.acquire(timeout=0.1)
    assert caught.value.message.startswith(
        "All 2 connections to this destination are in use by: Backup #12 (nightly), Validate by admin;"
    )
    validate.release()
    assert leases.holders() == ["Backup #12 (nightly)"]
    assert redis_client.hkeys(leases.holders_key) == [backup.token.encode()]

    dead = ConnectionLeases(redis_client, key, limit=2, ttl=0.3)
    dead_token = dead._acquire_script(keys=[key, dead.holders_key], args=[2, 300, "dead-1", "Restore #3"])
    assert dead_token == 1
    assert "Restore #3" in leases.holders()
    time.sleep(0.4)  # never renewed: it expires
    assert "Restore #3" not in leases.holders()
    with leases.acquire(timeout=1, holder="Reindex #4"):
        assert b"dead-1" not in redis_client.hkeys(leases.holders_key)
    backup.release()
    assert leases.holders() == []

"""Jobs that cover all accounts: decided when the run starts, filtered, several at a time,
one account's failure leaving the others complete. Against the real pure-ftpd, with the
accounts discovered from a simulated server under BACKUPSITE_HOST_ROOT."""

from __future__ import annotations

import os
import secrets
import shutil
import threading

import pytest

from jobs.backup import coverage
from jobs.backup import cycle as backup
from jobs.discovery import accounts as discovery
from jobs.models import Account, BackupJob, Snapshot
from tests.support.fixtures_jobs import run_job
from tests.support.host_trees import plain_host

pytestmark = [pytest.mark.peer, pytest.mark.django_db]


class NoDatabases:
    def grants_catalog(self) -> tuple[list[str], list[str]]:
        return [], []


@pytest.fixture
def server(tmp_path, settings):
    p = f"a{secrets.token_hex(2)}"
    settings.HOST_ROOT = str(tmp_path / "host")
    host = plain_host(tmp_path / "host", p)
    # Keep the run small: five of the twenty login users.
    host.passwd = [line for line in host.passwd if not line.startswith(p) or line.split(":")[0] in _five(p)]
    host.write_passwd()
    discovery.discover(server=NoDatabases())
    return host, p


def _five(p: str) -> set[str]:
    return {f"{p}h{i:02d}" for i in range(5)}


def _job(destination, **fields) -> BackupJob:
    return BackupJob.objects.create(
        name=f"all-{secrets.token_hex(3)}",
        destination=destination,
        type="incremental",
        retention=2,
        include_databases=False,
        **fields,
    )


def test_an_all_accounts_job_backs_up_a_new_account_without_an_edit_and_ends_partial_when_one_home_is_unreadable(
    native_destination, server
):
    """GIVEN five discovered accounts and a job with accounts_mode=all (the default)
    WHEN it runs, an account is added to the server and found, and the job runs again
    THEN the second run backs up six accounts, the new one included, with no edit of the job;
    WHEN one account's home becomes unreadable THEN the run ends partial: that account failed
    with its reason, the five others completed."""
    host, p = server
    job = _job(native_destination)
    assert job.accounts_mode == "all"

    first = run_job(job)
    assert first.status == "completed", (first.error, first.log[-5:])
    assert sorted(r["account"] for r in first.result["accounts"]) == sorted(_five(p))

    host.add_user(f"{p}late", f"/home/{p}late")
    host.write_passwd()
    discovery.discover(server=NoDatabases())
    second = run_job(job)
    assert second.status == "completed", second.error
    assert f"{p}late" in {r["account"] for r in second.result["accounts"]}
    late = Snapshot.objects.get(account_name=f"{p}late", job_uuid=job.uuid)
    assert late.state == "complete"
    # The home is read under the host root, and the account shows it as the server names it.
    assert Account.objects.get(username=f"{p}late").home == f"/home/{p}late"

    victim = host.root / "home" / f"{p}h02"
    if os.geteuid() == 0:  # root reads anything: a home that is no longer a folder
        shutil.rmtree(victim)
        victim.write_text("not a folder\n")
    else:
        victim.chmod(0)
    try:
        third = run_job(job)
    finally:
        if victim.is_dir():
            victim.chmod(0o755)
    assert third.status == "partial", (third.error, third.log[-5:])
    assert third.error == "1 of 6 accounts failed"
    by_account = {r["account"]: r for r in third.result["accounts"]}
    assert by_account[f"{p}h02"]["status"] == "failed"
    assert by_account[f"{p}h02"]["error"]
    assert {name for name, r in by_account.items() if r["status"] == "completed"} == (
        _five(p) | {f"{p}late"}
    ) - {f"{p}h02"}


def test_accounts_run_several_at_a_time_never_more_than_the_destination_allows(
    native_destination, server, monkeypatch
):
    """GIVEN a job with parallel=4 on a destination capped at 2 connections
    WHEN it runs THEN two accounts are written at the same time, never three."""
    job = _job(native_destination, parallel=4)
    assert backup.parallel_accounts(job, 5) == 2
    active = 0
    peak = 0
    lock = threading.Lock()
    real_write = backup.write

    def counting_write(*args, **kwargs):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            return real_write(*args, **kwargs)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(backup, "write", counting_write)
    item = run_job(job)
    assert item.status == "completed", item.error
    assert peak == 2
    assert any("5 accounts, 2 at a time" in line for line in item.log)


def test_filters_narrow_the_accounts_a_run_covers(server, db):
    """GIVEN discovered accounts with resellers and a suspended one WHEN a job filters them
    THEN include, exclude, resellers and skip_suspended each narrow the run, removed
    accounts are never part of `all`, and `selected` keeps its own list."""
    _, p = server
    from destinations.models import Destination

    destination = Destination.objects.create(name="x", host="127.0.0.1", username="u", directory="b")
    Account.objects.filter(username=f"{p}h00").update(reseller="res1", suspended=True)
    Account.objects.filter(username=f"{p}h01").update(reseller="res1")
    Account.objects.filter(username=f"{p}h04").update(removed_at="2026-01-01T00:00:00Z")
    job = _job(destination)

    def names(**fields: object) -> list[str]:
        for name, value in fields.items():
            setattr(job, name, value)
        return [a.username for a in coverage.covered(job).accounts]

    assert names() == [f"{p}h00", f"{p}h01", f"{p}h02", f"{p}h03"]
    assert names(include=[f"{p}h0[12]"]) == [f"{p}h01", f"{p}h02"]
    assert names(include=[], exclude=["*h01", "*h03"]) == [f"{p}h00", f"{p}h02"]
    assert names(exclude=[], resellers=["res1"]) == [f"{p}h00", f"{p}h01"]
    assert names(skip_suspended=True) == [f"{p}h01"]
    assert coverage.covered(job).skipped[f"{p}h00"] == "suspended"
    job.accounts.set(Account.objects.filter(username__in=[f"{p}h00", f"{p}h04"]))
    assert names(accounts_mode="selected", resellers=[], skip_suspended=False) == [f"{p}h00", f"{p}h04"]

"""Ownership round-trips through native backups on a real pure-ftpd, and what a client may
restore or download of files their account's uid cannot read.

Run as root (the suite does): the home holds entries chowned to arbitrary uids and gids
without creating users.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from destinations.formats import native, ownership
from jobs.models import Account, QueueItem
from jobs.restore import downloads
from tests.support.fakes import write_test_backup
from tests.support.fixtures_restore import (
    HOME_OWNER,
    make_native_backup,
    restored_folder,
    run_download,
    run_restore,
)

pytest_plugins = ["tests.support.fixtures_restore"]
pytestmark = [pytest.mark.peer, pytest.mark.django_db]

OTHER = (5001, 5002)  # a user of this server with no name
GROUP_NOBODY = 99
SHARED_GROUP = 7777  # a group the account is in (see account_groups)

# What a client of the account must not get, and what they must (paths in the home).
ADMIN_ONLY = ["root-only", "root-only/inside.txt", "root-secret.txt", "other-private.txt"]
EVERYTHING = {"whole_account": True, "confirm_overwrite": True}
CLIENT_GETS = ["other-readable.txt", "group-shared.txt", "public_html/index.php", "private.txt"]


def owner_state(root: Path) -> dict[bytes, tuple[int, int, int]]:
    """(uid, gid, mode) of every entry under `root` (setuid/setgid masked: restores drop them)."""
    state = {}
    base = os.fsencode(root)
    for folder, dirs, files in os.walk(base):
        for name in dirs + files:
            full = os.path.join(folder, name)
            st = os.lstat(full)
            mode = 0 if stat.S_ISLNK(st.st_mode) else stat.S_IMODE(st.st_mode) & 0o1777
            state[os.path.relpath(full, base)] = (st.st_uid, st.st_gid, mode)
    return state


def without_restores(state: dict[bytes, Any]) -> dict[bytes, Any]:
    return {k: v for k, v in state.items() if not k.startswith(b"restore-")}


def write(path: Path, text: str, owner: tuple[int, int], mode: int) -> None:
    path.write_text(text)
    os.chown(path, *owner)
    os.chmod(path, mode)


@pytest.fixture
def owned_home(restore_account: Account) -> Path:
    """The account's home (HOME_OWNER) with root's, another user's and group-owned entries."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the test chowns files to other users")
    home = Path(restore_account.home)
    (home / "root-only").mkdir(mode=0o700)
    os.chown(home / "root-only", 0, 0)
    write(home / "root-only" / "inside.txt", "root's, in a closed folder\n", (0, 0), 0o644)
    write(home / "root-secret.txt", "root only\n", (0, 0), 0o600)
    write(home / "other-private.txt", "another user's\n", OTHER, 0o640)
    write(home / "other-readable.txt", "another user's, for all\n", OTHER, 0o644)
    write(
        home / "group-shared.txt",
        "another user's, for the account's group\n",
        (OTHER[0], SHARED_GROUP),
        0o640,
    )
    os.chown(home / "public_html", HOME_OWNER[0], GROUP_NOBODY)
    os.chmod(home / "public_html", 0o750)  # noqa: S103 - the group reads it
    os.chown(home / "public_html" / "index.php", HOME_OWNER[0], GROUP_NOBODY)
    return home


@pytest.fixture
def account_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """The account's login is in SHARED_GROUP (as /etc/group would say)."""
    real = ownership.system.groups_of

    def groups_of(username: str, gid: int) -> set[int]:
        return real(username, gid) | {SHARED_GROUP}

    monkeypatch.setattr(ownership.system, "groups_of", groups_of)


@pytest.fixture
def admin() -> Any:
    return get_user_model().objects.create_user("owners-admin", password="x", is_staff=True)


@pytest.fixture
def client(restore_account: Account) -> Any:
    user = get_user_model().objects.create_user("owners-client", password="x")
    restore_account.owner = user
    restore_account.save()
    return user


def skipped(item: QueueItem) -> dict[str, str]:
    return {s["path"]: s["reason"] for s in item.result["skipped"]}


# --- the manifest -----------------------------------------------------------------------------


def test_the_manifest_records_owners_compactly(restore_native_destination, owned_home: Path) -> None:
    """
    GIVEN a home owned by the account with root's, another user's and group-owned entries
    WHEN it is backed up
    THEN the header holds the account's uid/gid and the names it knows; only the entries of
         other owners or groups carry "u"/"g"; reading the manifest back gives the same owners
    """
    account = Account.objects.get(home=str(owned_home))
    backup = make_native_backup(restore_native_destination, account)
    manifest = backup.manifest
    assert manifest.owner == HOME_OWNER
    assert manifest.users.get(0) == "root"
    assert manifest.groups.get(0) == "root"
    entries = manifest.entry_map()
    assert (entries[b"root-secret.txt"].uid, entries[b"root-secret.txt"].gid) == (0, 0)
    assert (entries[b"other-private.txt"].uid, entries[b"other-private.txt"].gid) == OTHER
    assert (entries[b"public_html"].uid, entries[b"public_html"].gid) == (None, GROUP_NOBODY)
    owned = {e.path for e in manifest.entries if e.uid is not None or e.gid is not None}
    assert owned == {
        b"root-only",
        b"root-only/inside.txt",
        b"root-secret.txt",
        b"other-private.txt",
        b"other-readable.txt",
        b"group-shared.txt",
        b"public_html",
        b"public_html/index.php",
    }
    with (
        restore_native_destination_session(restore_native_destination) as session,
        session.connection() as conn,
    ):
        again = native.read_manifest(conn, backup.snapshot.path)
    assert again.owner == HOME_OWNER
    assert [(e.path, e.uid, e.gid) for e in again.entries] == [
        (e.path, e.uid, e.gid) for e in manifest.entries
    ]


def restore_native_destination_session(destination: Any) -> Any:
    from destinations.ftp import FtpSession

    return FtpSession(destination.ftp_settings(), max_connections=1)


# --- restores by an admin -----------------------------------------------------------------------


def test_admin_restore_into_a_new_folder_puts_every_owner_back(
    restore_native_destination, owned_home: Path, admin: Any
) -> None:
    """
    GIVEN a backup of a home with root's 0700 folder, root's 0600 file, another user's files
          and public_html in group 99
    WHEN an admin restores the whole account into a new folder
    THEN every entry there has the uid, gid and mode it had; the new folder is the account's
    """
    account = Account.objects.get(home=str(owned_home))
    expected = owner_state(owned_home)
    backup = make_native_backup(restore_native_destination, account)

    item = run_restore(backup.snapshot, EVERYTHING, admin)

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    folder = restored_folder(item)
    assert owner_state(folder) == expected
    assert os.stat(folder)[4:6] == HOME_OWNER
    assert os.stat(folder / "public_html").st_gid == GROUP_NOBODY
    assert os.stat(folder / "root-only")[4:6] == (0, 0)
    assert item.result["skipped"] == []


def test_admin_restore_over_the_current_files_puts_every_owner_back(
    restore_native_destination, owned_home: Path, admin: Any
) -> None:
    """
    GIVEN a backup of that home, then every entry chowned to the account and some removed
    WHEN an admin restores the whole account over the current files
    THEN every entry has its recorded uid, gid and mode again
    """
    account = Account.objects.get(home=str(owned_home))
    expected = owner_state(owned_home)
    backup = make_native_backup(restore_native_destination, account)
    for path in owner_state(owned_home):
        os.lchown(os.path.join(os.fsencode(owned_home), path), *HOME_OWNER)
    (owned_home / "root-secret.txt").unlink()
    shutil.rmtree(owned_home / "root-only")

    item = run_restore(backup.snapshot, {**EVERYTHING, "target": "overwrite"}, admin)

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    assert without_restores(owner_state(owned_home)) == expected


def test_the_accounts_files_follow_its_new_uid_and_other_owners_go_by_name(
    restore_native_destination, owned_home: Path, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    GIVEN a backup, then the account's uid and gid changed (its home chowned to 4300:4301),
          and a file of user `daemon` (a name this system knows) whose uid differs here
    WHEN an admin restores into a new folder
    THEN the account's entries get 4300:4301, root's stay root's, a nameless uid stays that
         number, and daemon's file gets daemon's uid on this system
    """
    account = Account.objects.get(home=str(owned_home))
    write(owned_home / "daemon.txt", "daemon's\n", (1, 1), 0o644)
    daemon = ownership.system.user_id("daemon")
    if daemon != 1:
        pytest.skip("this system has no user daemon with uid 1")
    backup = make_native_backup(restore_native_destination, account)
    assert backup.manifest.users[1] == "daemon"
    new = (4300, 4301)
    os.chown(owned_home, *new)
    real = ownership.system.user_id
    monkeypatch.setattr(ownership.system, "user_id", lambda name: 2 if name == "daemon" else real(name))

    item = run_restore(backup.snapshot, EVERYTHING, admin)

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    folder = restored_folder(item)
    got = owner_state(folder)
    assert os.stat(folder)[4:6] == new
    assert got[b"private.txt"][:2] == new
    assert got[b"public_html"][:2] == (new[0], GROUP_NOBODY)
    assert got[b"root-secret.txt"][:2] == (0, 0)
    assert got[b"other-private.txt"][:2] == OTHER
    assert got[b"daemon.txt"][:2] == (2, 1)
    mail = [k for k in got if k.startswith(b"mail/")]
    assert mail
    assert all(got[k][:2] == new for k in mail)


# --- what a client gets -------------------------------------------------------------------------


def test_a_clients_restore_skips_what_the_account_cannot_read_and_says_so(
    restore_native_destination, owned_home: Path, client: Any, account_groups: None
) -> None:
    """
    GIVEN that backup, and the account in group SHARED_GROUP
    WHEN the account's client restores everything into a new folder
    THEN root's closed folder (with its content), root's 0600 file and another user's 0640
         file are left out and listed as admin only; another user's 0644 file, a file of a
         group the account is in and the account's own files (public_html in group 99) come
         back with their owners
    """
    account = Account.objects.get(home=str(owned_home))
    expected = owner_state(owned_home)
    backup = make_native_backup(restore_native_destination, account)

    item = run_restore(backup.snapshot, EVERYTHING, client)

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    folder = restored_folder(item)
    got = owner_state(folder)
    for path in ADMIN_ONLY:
        assert path.encode() not in got, path
    for path in CLIENT_GETS:
        assert got[path.encode()] == expected[path.encode()], path
    reasons = skipped(item)
    assert set(reasons) == {"root-only", "root-secret.txt", "other-private.txt"}
    assert reasons["root-only"].startswith("admin only: a folder owned by root:root with mode 0700")
    assert "(with the 1 entry in it)" in reasons["root-only"]
    assert "5001:5002 with mode 0640" in reasons["other-private.txt"]
    assert {k: v for k, v in got.items() if k.decode(errors="replace") not in ADMIN_ONLY} == {
        k: v for k, v in expected.items() if k.decode(errors="replace") not in ADMIN_ONLY
    }


def test_a_client_choosing_a_file_in_a_closed_folder_gets_nothing_and_a_reason(
    restore_native_destination, owned_home: Path, client: Any
) -> None:
    """
    GIVEN that backup, and the account NOT in SHARED_GROUP
    WHEN the client restores root-only/inside.txt (0644, in root's 0700 folder) and group-shared.txt
    THEN nothing is written, both are reported as admin only
    """
    account = Account.objects.get(home=str(owned_home))
    backup = make_native_backup(restore_native_destination, account)

    item = run_restore(backup.snapshot, {"paths": ["root-only/inside.txt", "group-shared.txt"]}, client)

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    assert owner_state(restored_folder(item)) == {}
    reasons = skipped(item)
    assert reasons["root-only/inside.txt"] == "admin only: inside a folder the account cannot open"
    assert reasons["group-shared.txt"].startswith("admin only: owned by 5001:7777 with mode 0640")


def tar_members(item: QueueItem) -> dict[str, tarfile.TarInfo]:
    path = downloads.download_file(item)
    assert path is not None
    with tarfile.open(path, "r:gz", encoding="utf-8", errors="surrogateescape") as tar:
        return {member.name: member for member in tar.getmembers()}


def tar_names(item: QueueItem) -> set[str]:
    return set(tar_members(item))


def test_a_clients_download_leaves_out_what_the_account_cannot_read_an_admins_holds_it(
    restore_native_destination, owned_home: Path, client: Any, admin: Any, account_groups: None
) -> None:
    """
    GIVEN that backup
    WHEN the client downloads the whole backup, and an admin does
    THEN the client's .tar.gz lacks root's and the other user's unreadable entries (each
         reported as skipped) and holds the readable ones; the admin's holds everything, with
         the recorded owners in the tar headers
    """
    account = Account.objects.get(home=str(owned_home))
    backup = make_native_backup(restore_native_destination, account)

    mine = run_download(backup.snapshot, {"whole_account": True}, client)
    theirs = run_download(backup.snapshot, {"whole_account": True}, admin)

    assert mine.status == QueueItem.Status.COMPLETED, (mine.error, mine.result)
    assert theirs.status == QueueItem.Status.COMPLETED, (theirs.error, theirs.result)
    client_names, admin_names = tar_names(mine), tar_names(theirs)
    for path in ADMIN_ONLY:
        assert f"homedir/{path}" not in client_names, path
        assert f"homedir/{path}" in admin_names, path
    for path in CLIENT_GETS:
        assert f"homedir/{path}" in client_names, path
    assert set(skipped(mine)) == {"root-only", "root-secret.txt", "other-private.txt"}
    assert theirs.result["skipped"] == []
    assert client_names | {f"homedir/{p}" for p in ADMIN_ONLY} == admin_names
    # The tar headers carry the owners the backup recorded (tar -x as root maps them by name).
    members = tar_members(theirs)
    secret = members["homedir/root-secret.txt"]
    assert (secret.uid, secret.gid, secret.uname, secret.gname) == (0, 0, "root", "root")
    assert members["homedir/public_html"].gid == GROUP_NOBODY
    assert (members["homedir/private.txt"].uid, members["homedir/private.txt"].gid) == HOME_OWNER
    assert (members["homedir/other-private.txt"].uid, members["homedir/other-private.txt"].gid) == OTHER


# --- incremental pushes -----------------------------------------------------------------------


def test_an_incremental_push_records_a_new_owner_without_storing_the_file_again(
    restore_native_destination, owned_home: Path
) -> None:
    """
    GIVEN a backup, then public_html/index.php chowned to root and root-secret.txt given
          to the account, contents and mtimes unchanged
    WHEN an incremental push updates the slot
    THEN the new manifest records the new owners and keeps both files' stored chunks
    """
    account = Account.objects.get(home=str(owned_home))
    backup = make_native_backup(restore_native_destination, account)
    before = backup.manifest.entry_map()
    os.chown(owned_home / "public_html" / "index.php", 0, 0)
    os.chown(owned_home / "root-secret.txt", *HOME_OWNER)

    with restore_native_destination_session(restore_native_destination) as session:
        pushed = write_test_backup(
            session,
            owned_home,
            account=account.username,
            backup_id=backup.manifest.backup_id,
            job_uuid=backup.manifest.job_uuid,
            job_name="restore tests",
            backup_type="incremental",
            progress=native.NullProgress(),
            previous=backup.manifest,
        )

    after = pushed.entry_map()
    assert (after[b"public_html/index.php"].uid, after[b"public_html/index.php"].gid) == (0, 0)
    assert (after[b"root-secret.txt"].uid, after[b"root-secret.txt"].gid) == (None, None)
    for path in (b"public_html/index.php", b"root-secret.txt"):
        assert after[path].chunks == before[path].chunks
    assert pushed.totals["reused_files"] == pushed.totals["files"]


# --- cPanel archives ----------------------------------------------------------------------------


def _cpanel_archive(folder: Path, user: str, tenant: str) -> None:
    """A small cPanel archive whose tar headers name root, the account, another account and
    groups (the cPanel server's numbers are nonsense on purpose: only names may count)."""
    import io

    def add(
        tar: tarfile.TarFile, name: str, kind: bytes, mode: int, owner: str, group: str, data: bytes = b""
    ) -> None:
        info = tarfile.TarInfo(f"{user}/{name}")
        info.type, info.mode, info.mtime = kind, mode, 1_700_000_000
        info.uid, info.gid, info.uname, info.gname = 31337, 31338, owner, group
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data) if data else None)

    with tarfile.open(folder / f"{user}.tar.gz", "w:gz", format=tarfile.GNU_FORMAT) as tar:
        add(tar, "cp", tarfile.DIRTYPE, 0o755, "root", "root")
        add(tar, f"cp/{user}", tarfile.REGTYPE, 0o600, "root", "root", f"USER={user}\n".encode())
        add(tar, "homedir", tarfile.DIRTYPE, 0o711, user, user)
        add(tar, "homedir/public_html", tarfile.DIRTYPE, 0o750, user, "nobody")
        add(
            tar,
            "homedir/public_html/index.html",
            tarfile.REGTYPE,
            0o644,
            user,
            "nobody",
            b"<html>hi</html>\n",
        )
        add(tar, "homedir/etc", tarfile.DIRTYPE, 0o750, user, "mail")
        add(tar, "homedir/root-only", tarfile.DIRTYPE, 0o700, "root", "root")
        add(tar, "homedir/root-only/inside.txt", tarfile.REGTYPE, 0o644, "root", "root", b"root's\n")
        add(tar, "homedir/root-secret.txt", tarfile.REGTYPE, 0o600, "root", "root", b"root only\n")
        add(tar, "homedir/tenant.txt", tarfile.REGTYPE, 0o660, tenant, tenant, b"another account's\n")


@pytest.fixture
def cpanel_owned(
    restore_cpanel_destination, pure_ftpd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Account:
    """An indexed cPanel archive of account `own…` (home: HOME_OWNER), with another account
    `ten…` on this panel; groups `nobody` (99) and the tenant's exist here."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the test chowns files to other users")
    import secrets

    from jobs.models import Snapshot
    from tests.support.fixtures_restore import chown_tree, cpanel_folder, index_cpanel

    user, tenant = f"own{secrets.token_hex(3)}", f"ten{secrets.token_hex(3)}"
    Account.objects.create(username=tenant)
    _cpanel_archive(cpanel_folder(pure_ftpd, restore_cpanel_destination), user, tenant)
    (snapshot,) = [s for s in index_cpanel(restore_cpanel_destination) if s.account_name == user]
    assert snapshot.restorable, snapshot.problems
    home = tmp_path / "homes" / user
    home.mkdir(parents=True)
    chown_tree(home, HOME_OWNER)
    account = Account.objects.get(username=user)
    account.home = str(home)
    account.save()
    real = ownership.system.group_id
    groups = {"nobody": 99, tenant: 5555}
    monkeypatch.setattr(ownership.system, "group_id", lambda name: groups.get(name, real(name)))
    assert Snapshot.objects.filter(account=account).count() == 1
    return account


def test_cpanel_restore_keeps_roots_and_known_groups_and_gives_the_rest_to_the_account(
    cpanel_owned: Account, admin: Any
) -> None:
    """
    GIVEN a cPanel archive whose headers name root, the account, another account of this
          panel, and the groups nobody and mail (uids and gids of another server)
    WHEN an admin restores it into a new folder
    THEN root's entries stay root's, public_html keeps group nobody (99 here) and etc/ group
         mail; the other account's file and everything else belong to the account
    """
    from jobs.models import Snapshot

    snapshot = Snapshot.objects.get(account=cpanel_owned)
    item = run_restore(snapshot, EVERYTHING, admin)

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    got = owner_state(restored_folder(item))
    mail = ownership.system.group_id("mail")
    assert got == {
        b"public_html": (HOME_OWNER[0], 99, 0o750),
        b"public_html/index.html": (HOME_OWNER[0], 99, 0o644),
        b"etc": (HOME_OWNER[0], mail if mail is not None else HOME_OWNER[1], 0o750),
        b"root-only": (0, 0, 0o700),
        b"root-only/inside.txt": (0, 0, 0o644),
        b"root-secret.txt": (0, 0, 0o600),
        b"tenant.txt": (*HOME_OWNER, 0o660),
    }


def test_cpanel_restore_and_download_by_a_client_skip_roots_closed_entries(
    cpanel_owned: Account, client: Any
) -> None:
    """
    GIVEN that archive, and the account's client
    WHEN the client restores everything, and downloads everything
    THEN root's closed folder (with its content) and root's 0600 file are left out of both and
         reported as admin only; the rest comes back
    """
    from jobs.models import Snapshot

    cpanel_owned.owner = client
    cpanel_owned.save()
    snapshot = Snapshot.objects.get(account=cpanel_owned)

    restored = run_restore(snapshot, EVERYTHING, client)
    fetched = run_download(snapshot, {"whole_account": True}, client)

    assert restored.status == QueueItem.Status.COMPLETED, (restored.error, restored.result)
    assert fetched.status == QueueItem.Status.COMPLETED, (fetched.error, fetched.result)
    assert set(owner_state(restored_folder(restored))) == {
        b"public_html",
        b"public_html/index.html",
        b"etc",
        b"tenant.txt",
    }
    for item in (restored, fetched):
        reasons = {path: why for path, why in skipped(item).items() if why.startswith("admin only")}
        assert set(reasons) == {"root-only", "root-secret.txt"}, reasons
        assert reasons["root-only"].startswith("admin only: a folder owned by root:root with mode 0700")
    names = tar_names(fetched)
    assert not {n for n in names if "root-" in n}
    assert "homedir/tenant.txt" in names

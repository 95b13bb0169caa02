"""Smaller holes a client (or a crafted link) could use: off-site `next` redirects, downloads
fetched after the account moved to another client, and queueing restores without end."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from destinations import listing
from destinations.models import Destination, Engine
from jobs.models import Account, QueueItem, Snapshot
from tests.support import REPO

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    """Accounts alice and alice_x, owned by two clients, each with one complete backup."""
    users = get_user_model().objects
    alice = users.create_user("client-alice", password="x-Alice-pw-1")
    other = users.create_user("client-other", password="x-Other-pw-1")
    destination = Destination(name="limits-dest", host="127.0.0.1", port=1, username="backup")
    destination.set_password("pw")
    destination.save()
    root = listing.build(
        [listing.Entry("public_html", "dir"), listing.Entry("public_html/a", "file", size=1)]
    )
    found: dict[str, Any] = {"client_alice": alice, "client_other": other, "destination": destination}
    for name, owner in (("alice", alice), ("alice_x", other)):
        account = Account.objects.create(username=name, home=str(tmp_path / name), owner=owner)
        found[name] = account
        found[f"{name}_snapshot"] = Snapshot.objects.create(
            destination=destination,
            account=account,
            account_name=name,
            engine=Engine.CPANEL,
            path=f"2025-07-04/accounts/{name}.tar.gz",
            created=datetime(2025, 7, 4, tzinfo=UTC),
            state=Snapshot.State.COMPLETE,
            parts=[{"kind": "homedir", "name": "", "size": 1}],
            listing_root=root,
        )
    return found


# --- next --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/phish",
        "//evil.example/x",
        "///evil.example",
        "http:evil.example",
        "javascript:alert(1)",
    ],
)
@pytest.mark.parametrize("action", ["lock", "unlock"])
def test_lock_and_unlock_never_redirect_off_site(
    admin_client: Any, world: dict[str, Any], action: str, target: str
) -> None:
    snapshot = world["alice_snapshot"]
    url = reverse(f"jobs:snapshot-{action}", args=[snapshot.pk])
    response = admin_client.post(url, {"next": target})
    assert response.status_code == 302
    assert response["Location"] == reverse("jobs:snapshots")


def test_lock_redirects_back_to_the_panel_page_it_came_from(admin_client: Any, world: dict[str, Any]) -> None:
    snapshot = world["alice_snapshot"]
    back = reverse("jobs:snapshots") + "?account=alice&page=2"
    response = admin_client.post(reverse("jobs:snapshot-lock", args=[snapshot.pk]), {"next": back})
    assert response["Location"] == back
    snapshot.refresh_from_db()
    assert snapshot.locked


# --- prepared downloads ------------------------------------------------------------------------


def _prepared_download(user: Any, account: Account, snapshot: Snapshot) -> tuple[QueueItem, str]:
    """A finished download as the worker leaves it: its file in the downloads folder."""
    token = secrets.token_hex(16)
    folder = Path(settings.DOWNLOADS_DIR) / token
    folder.mkdir(parents=True)
    (folder / "alice_x.tar.gz").write_bytes(b"the files of alice_x")
    item = QueueItem.objects.create(
        kind=QueueItem.Kind.DOWNLOAD,
        status=QueueItem.Status.COMPLETED,
        account=account,
        snapshot=snapshot,
        requested_by=user,
        result={
            "token": token,
            "file": "alice_x.tar.gz",
            "expires": (timezone.now() + timedelta(hours=1)).isoformat(),
        },
    )
    return item, reverse("jobs:download", args=[item.pk, token])


def test_a_prepared_download_is_refused_once_the_account_moved_to_another_client(
    client: Any, world: dict[str, Any]
) -> None:
    """
    GIVEN client "other" prepared a download of alice_x while they owned it
    WHEN the admin moves alice_x to client alice, and "other" fetches the link
    THEN 404 (and alice, who did not ask for it, gets 404 too)
    """
    other, alice = world["client_other"], world["client_alice"]
    item, url = _prepared_download(other, world["alice_x"], world["alice_x_snapshot"])
    client.force_login(other)
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"the files of alice_x"

    Account.objects.filter(pk=world["alice_x"].pk).update(owner=alice)
    assert client.get(url).status_code == 404
    client.force_login(alice)
    assert client.get(url).status_code == 404

    from jobs.restore import downloads

    item.refresh_from_db()
    assert downloads.download_file(item, user=other) is None
    assert downloads.download_file(item) is not None  # the file is still there, for the admin's cleanup


@pytest.mark.parametrize("action", ["restore", "download"])
@pytest.mark.parametrize("change", ["moved", "switched_off"])
def test_work_a_client_queued_is_refused_when_it_runs_after_the_account_moved(
    world: dict[str, Any], action: str, change: str
) -> None:
    """
    GIVEN client "other" queued a restore (over the live files) or a download of alice_x
    WHEN, before a worker takes it, the admin moves alice_x to client alice (or switches
         "other" off)
    THEN the worker refuses it before it touches anything: their request never writes into
         an account that is not theirs any more, nor prepares its files
    """
    from tests.support.fixtures_restore import run_item

    other, alice = world["client_other"], world["client_alice"]
    api = APIClient()
    api.force_authenticate(other)
    body: dict[str, Any] = {"whole_account": True}
    if action == "restore":
        body.update({"target": "overwrite", "confirm_overwrite": True})
    answer = api.post(f"/api/v1/snapshots/{world['alice_x_snapshot'].pk}/{action}/", body, format="json")
    assert answer.status_code == 202, answer.json()
    if change == "moved":
        Account.objects.filter(pk=world["alice_x"].pk).update(owner=alice)
    else:
        get_user_model().objects.filter(pk=other.pk).update(is_active=False)

    item = run_item(QueueItem.objects.get(pk=answer.json()["id"]))
    assert item.status == QueueItem.Status.FAILED
    assert "Account alice_x no longer belongs to client-other, who asked for this; refused." in item.error


# --- the per-client queue limit -----------------------------------------------------------------


def _queue_restore(api: APIClient, snapshot: Snapshot, action: str = "restore") -> Any:
    return api.post(f"/api/v1/snapshots/{snapshot.pk}/{action}/", {"whole_account": True}, format="json")


def test_a_client_may_queue_three_restores_and_downloads_then_gets_429(world: dict[str, Any]) -> None:
    """
    GIVEN client alice, the default limit (3) and no work queued
    WHEN she queues two restores and a download, then one more restore
    THEN the fourth answers 429 with a message and queues nothing; once one has finished,
         she may queue again
    """
    assert settings.CLIENT_QUEUE_LIMIT == 3
    api = APIClient()
    api.force_authenticate(world["client_alice"])
    snapshot = world["alice_snapshot"]
    answers = [_queue_restore(api, snapshot, action) for action in ("restore", "download", "restore")]
    assert [a.status_code for a in answers] == [202, 202, 202]
    count = QueueItem.objects.count()

    refused = _queue_restore(api, snapshot, "download")
    assert refused.status_code == 429
    assert "3 restores and downloads queued or running" in refused.json()["detail"]
    assert QueueItem.objects.count() == count

    QueueItem.objects.filter(pk=answers[0].json()["id"]).update(status=QueueItem.Status.COMPLETED)
    assert _queue_restore(api, snapshot).status_code == 202

    other = APIClient()  # another client is not limited by alice's queue
    other.force_authenticate(world["client_other"])
    assert _queue_restore(other, world["alice_x_snapshot"]).status_code == 202


def test_the_restore_page_shows_the_limit_as_an_error(
    client: Any, world: dict[str, Any], settings: Any
) -> None:
    settings.CLIENT_QUEUE_LIMIT = 1
    client.force_login(world["client_alice"])
    snapshot = world["alice_snapshot"]
    url = reverse("jobs:snapshot-restore", args=[snapshot.pk])
    form = {"whole_account": "1", "target": "new_folder", "confirmed": "1"}
    assert client.post(url, form)["Location"].startswith("/queue/")
    count = QueueItem.objects.count()
    response = client.post(url, form)
    assert response.status_code == 302
    assert response["Location"] == reverse("jobs:snapshot-detail", args=[snapshot.pk])
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert "the most allowed at once (1)" in message
    assert QueueItem.objects.count() == count


def test_admins_are_not_limited(admin_user: Any, world: dict[str, Any]) -> None:
    api = APIClient()
    api.force_authenticate(admin_user)
    answers = [_queue_restore(api, world["alice_snapshot"]).status_code for _ in range(5)]
    assert answers == [202] * 5


@pytest.mark.parametrize(("value", "message"), [("three", "must be an integer"), ("0", "must be at least 1")])
def test_the_queue_limit_setting_is_parsed_strictly(tmp_path: Path, value: str, message: str) -> None:
    """A typo in BACKUPSITE_CLIENT_QUEUE_LIMIT stops the program naming the variable."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "BACKUPSITE_DATA_DIR": str(tmp_path), "BACKUPSITE_CLIENT_QUEUE_LIMIT": value}
    run = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO,
        env={**env, "DJANGO_SETTINGS_MODULE": "backupsite.settings"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0
    assert f"BACKUPSITE_CLIENT_QUEUE_LIMIT {message}" in run.stderr

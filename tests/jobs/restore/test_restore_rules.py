"""Restores that cannot surprise: nothing selected means nothing, live data is replaced only on
an explicit yes, and the pages say what a restore will do before it runs (no FTP, no MariaDB:
nothing here runs a restore, it only checks what gets queued)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from destinations import listing
from destinations.models import Destination, Engine
from jobs.models import Account, QueueItem, Snapshot

pytestmark = pytest.mark.django_db

PARTS = [
    {"kind": "homedir", "name": "", "size": 10},
    {"kind": "databases", "name": "ruxbob_wp", "size": 5},
    {"kind": "email_accounts", "name": "info@ruxbob.com", "size": 3},
    {"kind": "dns_zones", "name": "ruxbob.com", "size": 1, "text": "zone"},
]


@pytest.fixture
def client_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("ruxclient", password="rux-pw-1234")


@pytest.fixture
def snapshot(client_user: Any) -> Snapshot:
    destination = Destination.objects.create(name="d", engine=Engine.CPANEL, host="127.0.0.1", username="u")
    account = Account.objects.create(username="ruxbob", home="/home/ruxbob", owner=client_user)
    root = listing.build(
        [
            listing.Entry("public_html", "dir"),
            listing.Entry("public_html/index.php", "file", size=10),
            listing.Entry("public_html/about.php", "file", size=10),
            listing.Entry("notes.txt", "file", size=4),
        ]
    )
    return Snapshot.objects.create(
        destination=destination,
        account=account,
        account_name="ruxbob",
        engine=Engine.CPANEL,
        path="2026-12-04/accounts/ruxbob.tar.gz",
        created=datetime(2026, 12, 4, 2, 15, tzinfo=UTC),
        state=Snapshot.State.COMPLETE,
        parts=PARTS,
        listing_root=root,
    )


@pytest.fixture
def api(client_user: Any) -> APIClient:
    api = APIClient()
    api.force_authenticate(client_user)
    return api


def post(api: APIClient, snapshot: Snapshot, action: str, body: dict[str, Any]) -> Any:
    return api.post(f"/api/v1/snapshots/{snapshot.pk}/{action}/", body, format="json")


# --- the API --------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["restore", "download"])
@pytest.mark.parametrize("body", [{}, {"parts": [], "paths": []}, {"parts": [], "target": "new_folder"}])
def test_an_empty_selection_is_refused_and_queues_nothing(
    api: APIClient, snapshot: Snapshot, action: str, body: dict[str, Any]
) -> None:
    """GIVEN a body that chooses nothing WHEN it is posted THEN 400 says so and nothing is queued
    (before, it restored or downloaded the whole account)."""
    if action == "download":
        body = {key: value for key, value in body.items() if key != "target"}
    response = post(api, snapshot, action, body)

    assert response.status_code == 400, response.json()
    assert "Nothing is selected" in response.json()["__all__"][0]
    assert "whole_account" in response.json()["__all__"][0]
    assert not QueueItem.objects.exists()


def test_the_whole_account_is_an_explicit_choice(api: APIClient, snapshot: Snapshot) -> None:
    download = post(api, snapshot, "download", {"whole_account": True})
    assert download.status_code == 202, download.json()
    item = QueueItem.objects.get(pk=download.json()["id"])
    assert item.params == {"parts": [], "paths": [], "whole_account": True}

    both = post(api, snapshot, "download", {"whole_account": True, "paths": ["notes.txt"]})
    assert both.status_code == 400
    assert "every part" in both.json()["whole_account"][0]
    for not_a_boolean in ("true", 1, 0, "yes", ""):
        refused = post(api, snapshot, "download", {"whole_account": not_a_boolean})
        assert refused.status_code == 400
        assert "true or false" in refused.json()["whole_account"][0]
    assert QueueItem.objects.count() == 1


def test_a_whole_account_restore_over_the_live_database_needs_confirm_overwrite(
    api: APIClient, snapshot: Snapshot
) -> None:
    """GIVEN a backup with a database WHEN the whole account is restored under the live database
    name THEN it is refused until confirm_overwrite says yes; a new database name needs no yes."""
    refused = post(api, snapshot, "restore", {"whole_account": True})
    assert refused.status_code == 400
    message = refused.json()["confirm_overwrite"][0]
    assert "the live database ruxbob_wp" in message
    assert not QueueItem.objects.exists()

    new_name = post(api, snapshot, "restore", {"whole_account": True, "database_name": "ruxbob_wp_restored"})
    assert new_name.status_code == 202, new_name.json()
    assert QueueItem.objects.get(pk=new_name.json()["id"]).params == {
        "parts": [],
        "paths": [],
        "target": "new_folder",
        "database_name": "ruxbob_wp_restored",
        "whole_account": True,
    }

    confirmed = post(api, snapshot, "restore", {"whole_account": True, "confirm_overwrite": True})
    assert confirmed.status_code == 202, confirmed.json()
    item = QueueItem.objects.get(pk=confirmed.json()["id"])
    assert item.params["confirm_overwrite"] is True


def test_a_restore_over_the_current_files_needs_confirm_overwrite_naming_them(
    api: APIClient, snapshot: Snapshot
) -> None:
    body: dict[str, Any] = {"paths": ["public_html", "notes.txt"], "target": "overwrite"}
    refused = post(api, snapshot, "restore", body)
    assert refused.status_code == 400
    message = refused.json()["confirm_overwrite"][0]
    assert "1 file and 1 folder (public_html, notes.txt) in /home/ruxbob" in message
    assert not QueueItem.objects.exists()

    assert post(api, snapshot, "restore", {**body, "confirm_overwrite": False}).status_code == 400
    assert post(api, snapshot, "restore", {**body, "confirm_overwrite": True}).status_code == 202
    into_new_folder = post(api, snapshot, "restore", {"paths": ["public_html"], "target": "new_folder"})
    assert into_new_folder.status_code == 202, into_new_folder.json()


def test_a_database_part_under_its_own_name_needs_confirm_overwrite(
    api: APIClient, snapshot: Snapshot
) -> None:
    part = {"kind": "databases", "name": "ruxbob_wp"}
    refused = post(api, snapshot, "restore", {"parts": [part]})
    assert refused.status_code == 400
    assert "the live database ruxbob_wp" in refused.json()["confirm_overwrite"][0]
    assert (
        post(api, snapshot, "restore", {"parts": [part], "database_name": "ruxbob_copy"}).status_code == 202
    )
    # A new name restored with target overwrite may replace that database: asked as well.
    over = post(
        api, snapshot, "restore", {"parts": [part], "database_name": "ruxbob_copy", "target": "overwrite"}
    )
    assert over.status_code == 400
    assert "the database ruxbob_copy, if it exists" in over.json()["confirm_overwrite"][0]
    assert QueueItem.objects.count() == 1


def test_a_download_takes_no_confirm_overwrite(api: APIClient, snapshot: Snapshot) -> None:
    response = post(api, snapshot, "download", {"paths": ["notes.txt"], "confirm_overwrite": True})
    assert response.status_code == 400
    assert "replaces nothing" in response.json()["confirm_overwrite"][0]


def test_the_worker_checks_the_same_rules_again(snapshot: Snapshot) -> None:
    """A queue item whose params were written without the explicit choices (by hand, or before
    the rules) is refused by the worker instead of restoring everything."""
    from jobs.restore.outcome import RestoreRefused
    from jobs.restore.request import load_request

    with pytest.raises(RestoreRefused, match="Nothing is selected"):
        load_request(snapshot, {"parts": [], "paths": []})
    with pytest.raises(RestoreRefused, match="live database"):
        load_request(snapshot, {"parts": [{"kind": "databases", "name": "ruxbob_wp"}], "paths": []})


# --- the pages ------------------------------------------------------------------------------------


@pytest.fixture
def browser_client(client: Any, client_user: Any) -> Any:
    client.force_login(client_user)
    return client


def test_the_page_form_downloads_although_it_posts_the_restore_fields(
    browser_client: Any, snapshot: Snapshot
) -> None:
    """The same form holds the restore's target and database fields: a download ignores them
    (it answered "A download has no target" before)."""
    response = browser_client.post(
        reverse("jobs:snapshot-download", args=[snapshot.pk]),
        {"paths": ["notes.txt"], "target": "new_folder", "database_target": "new", "database_name": ""},
    )
    item = QueueItem.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("jobs:queue-detail", args=[item.pk])
    assert (item.kind, item.params) == (QueueItem.Kind.DOWNLOAD, {"parts": [], "paths": ["notes.txt"]})


def test_restore_selected_with_nothing_chosen_queues_nothing(browser_client: Any, snapshot: Snapshot) -> None:
    url = reverse("jobs:snapshot-restore", args=[snapshot.pk])
    for confirmed in ("", "1"):
        response = browser_client.post(
            url, {"target": "new_folder", "database_target": "new", "confirmed": confirmed}, follow=True
        )
        assert "Nothing is selected" in response.content.decode()
    assert not QueueItem.objects.exists()


def test_a_restore_page_says_what_it_will_do_and_queues_only_when_confirmed(
    browser_client: Any, snapshot: Snapshot
) -> None:
    url = reverse("jobs:snapshot-restore", args=[snapshot.pk])
    form = {
        "parts": ["databases:ruxbob_wp"],
        "paths": ["public_html/index.php", "public_html/about.php", "notes.txt"],
        "target": "new_folder",
        "database_target": "new",
        "database_name": "",
    }

    summary = browser_client.post(url, form)

    assert summary.status_code == 200
    page = summary.content.decode()
    assert "3 files (public_html/index.php, public_html/about.php, notes.txt) into a new folder" in page
    assert "restore-YYYY-MM-DD-HHMMSS/ in /home/ruxbob" in page
    assert "database ruxbob_wp into ruxbob_wp_restored (a new database)" in page
    assert "It replaces nothing" in page
    assert not QueueItem.objects.exists()

    hidden = {
        "parts": ["databases:ruxbob_wp"],
        "paths": form["paths"],
        "target": "new_folder",
        "database_name": "ruxbob_wp_restored",
        "confirmed": "1",
    }
    queued = browser_client.post(url, hidden)
    item = QueueItem.objects.get()
    assert queued.url == reverse("jobs:queue-detail", args=[item.pk])
    assert item.params["database_name"] == "ruxbob_wp_restored"
    assert "confirm_overwrite" not in item.params


def test_over_the_live_database_the_page_names_what_is_replaced_and_asks(
    browser_client: Any, snapshot: Snapshot
) -> None:
    url = reverse("jobs:snapshot-restore", args=[snapshot.pk])
    form = {"parts": ["databases:ruxbob_wp"], "target": "new_folder", "database_target": "live"}

    page = browser_client.post(url, form).content.decode()

    assert "database ruxbob_wp over the live database ruxbob_wp" in page
    assert 'id="restore-replaces"' in page
    assert "the live database ruxbob_wp" in page
    assert 'name="confirm_overwrite" value="1"' in page
    # Only the page's own button (confirmed, with confirm_overwrite) queues it.
    without_yes = browser_client.post(url, {**form, "confirmed": "1"}, follow=True)
    assert "the live database ruxbob_wp" in without_yes.content.decode()
    assert not QueueItem.objects.exists()
    browser_client.post(url, {**form, "confirmed": "1", "confirm_overwrite": "1"})
    assert QueueItem.objects.get().params["confirm_overwrite"] is True


def test_a_refused_form_comes_back_with_the_chosen_items_ticked(
    browser_client: Any, snapshot: Snapshot
) -> None:
    detail = reverse("jobs:snapshot-detail", args=[snapshot.pk])
    response = browser_client.post(
        reverse("jobs:snapshot-restore", args=[snapshot.pk]),
        {
            "parts": ["databases:ruxbob_wp", "homedir:"],
            "target": "overwrite",
            "database_target": "new",
            "database_name": "someone_else",
            "back": detail,
        },
        follow=True,
    )

    page = response.content.decode()
    assert response.redirect_chain[-1][0] == detail
    assert "ruxbob_ followed by letters" in page
    assert 'value="databases:ruxbob_wp" aria-label="select Database ruxbob_wp" checked' in page
    assert 'value="homedir:" aria-label="select Home directory " checked' in page
    assert 'value="email_accounts:info@ruxbob.com" aria-label="select Email account info@ruxbob.com">' in page
    assert '<option value="overwrite" selected>' in page
    assert 'value="someone_else"' in page
    assert 'id="restore-selected" data-needs-selection' in page
    assert "disabled>Restore selected" not in page  # something is chosen: the button is enabled
    # Shown once: the next visit starts empty again.
    again = browser_client.get(detail).content.decode()
    assert 'value="databases:ruxbob_wp" aria-label="select Database ruxbob_wp">' in again
    assert not QueueItem.objects.exists()


def test_the_whole_account_from_the_page_goes_into_a_new_folder_and_a_new_database(
    browser_client: Any, snapshot: Snapshot
) -> None:
    url = reverse("jobs:snapshot-restore", args=[snapshot.pk])
    form = {"whole_account": "1", "parts": ["homedir:"], "target": "new_folder", "database_target": "new"}

    page = browser_client.post(url, form).content.decode()

    assert "the whole home folder into a new folder restore-YYYY-MM-DD-HHMMSS/ in /home/ruxbob" in page
    assert "database ruxbob_wp into ruxbob_wp_restored (a new database)" in page
    assert "not restored: dns_zones: ruxbob.com" in page
    assert 'name="whole_account" value="1"' in page
    assert 'name="parts"' not in page  # the whole account is sent as such, not as a list of parts
    browser_client.post(url, {"whole_account": "1", "database_name": "ruxbob_wp_restored", "confirmed": "1"})
    assert QueueItem.objects.get().params == {
        "parts": [],
        "paths": [],
        "target": "new_folder",
        "database_name": "ruxbob_wp_restored",
        "whole_account": True,
    }

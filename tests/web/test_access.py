"""Who sees what: a client sees only their own accounts, backups, queue items and downloads;
everything else answers 404, whatever URL or id they try."""

from __future__ import annotations

import pytest
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from destinations.models import Destination
from jobs.models import Account, BackupJob, QueueItem, Snapshot
from tests.support.pages import patterns

pytestmark = pytest.mark.django_db

FOREIGN = 1000  # every object of the other client has an id from here, none of alice's does


@pytest.fixture
def world(django_user_model, tmp_path):
    destination = Destination(name="offsite", host="192.0.2.10", username="backup")
    destination.set_password("pw")
    destination.save()
    alice = django_user_model.objects.create_user("alice", password="alice-pw-1234")
    mine = Account.objects.create(username="alicesite", home=str(tmp_path / "alice"), owner=alice)
    my_snapshot = Snapshot.objects.create(
        destination=destination,
        account=mine,
        account_name="alicesite",
        engine="native",
        path="alicesite/20250101T000000Z-00000001",
        created=timezone.now(),
        state="complete",
    )
    bob = django_user_model.objects.create_user("bobby", password="bob-pw-1234", pk=FOREIGN)
    theirs = Account.objects.create(pk=FOREIGN, username="bobsite", home=str(tmp_path / "bob"), owner=bob)
    their_snapshot = Snapshot.objects.create(
        pk=FOREIGN,
        destination=destination,
        account=theirs,
        account_name="bobsite",
        engine="native",
        path="bobsite/20250101T000000Z-00000002",
        created=timezone.now(),
        state="complete",
    )
    job = BackupJob.objects.create(pk=FOREIGN, name="bob's job", destination=destination)
    job.accounts.add(theirs)
    their_restore = QueueItem.objects.create(
        pk=FOREIGN,
        kind="restore",
        status="completed",
        account=theirs,
        snapshot=their_snapshot,
        requested_by=bob,
    )
    their_download = QueueItem.objects.create(
        pk=FOREIGN + 1,
        kind="download",
        status="completed",
        account=theirs,
        snapshot=their_snapshot,
        requested_by=bob,
        result={"token": "bobstoken", "url": f"/downloads/{FOREIGN + 1}/bobstoken/"},
    )
    Destination.objects.filter(pk=destination.pk).update()
    return {
        "alice": alice,
        "mine": mine,
        "my_snapshot": my_snapshot,
        "theirs": theirs,
        "their_snapshot": their_snapshot,
        "their_restore": their_restore,
        "their_download": their_download,
        "destination": destination,
    }


def foreign_kwargs(kwargs: set[str]) -> list[dict[str, object]]:
    values: dict[str, list[object]] = {"pk": [FOREIGN, FOREIGN + 1], "token": ["bobstoken"]}
    combos: list[dict[str, object]] = [{}]
    for name in sorted(kwargs):
        combos = [{**c, name: v} for c in combos for v in values.get(name, [FOREIGN])]
    return combos


def test_a_client_gets_404_for_every_url_with_a_foreign_id(client, world):
    assert client.login(request=HttpRequest(), username="alice", password="alice-pw-1234")
    api = APIClient()
    api.force_authenticate(world["alice"])
    checked = 0
    for name, kwargs in patterns():
        if not kwargs or name.startswith("admin:"):
            continue
        for values in foreign_kwargs(kwargs):
            url = reverse(name, kwargs=values)
            agent = api if url.startswith("/api/") else client
            answers = {method: getattr(agent, method)(url).status_code for method in ("get", "post")}
            assert all(code in (404, 405) for code in answers.values()), (url, answers)
            assert 404 in answers.values(), (url, answers)
            checked += 1
    assert checked >= 25


def test_a_client_sees_only_their_own_things_in_lists(client, world):
    api = APIClient()
    api.force_authenticate(world["alice"])
    snapshots = api.get("/api/v1/snapshots/").json()
    assert [row["id"] for row in snapshots["results"]] == [world["my_snapshot"].pk]
    assert [row["username"] for row in api.get("/api/v1/accounts/").json()["results"]] == ["alicesite"]
    assert api.get("/api/v1/queue/").json()["count"] == 0
    for staff_only in ("/api/v1/destinations/", "/api/v1/jobs/", "/api/v1/clients/"):
        assert api.get(staff_only).status_code == 404, staff_only
    client.login(request=HttpRequest(), username="alice", password="alice-pw-1234")
    for page in ("/mine/", f"/accounts/{world['mine'].pk}/", f"/backups/{world['my_snapshot'].pk}/"):
        body = client.get(page).content.decode()
        for foreign in ("bobsite", "bobby"):
            assert foreign not in body, f"{page} shows {foreign}"
        for setting in ("offsite", "192.0.2.10"):
            assert setting not in body, f"{page} shows destination settings"
    newest = timezone.localtime(world["my_snapshot"].created).strftime("%Y-%m-%d %H:%M")
    assert f"1 backup, the newest from {newest}" in client.get("/mine/").content.decode()


def test_a_client_cannot_smuggle_a_foreign_id_through_a_body(client, world):
    api = APIClient()
    api.force_authenticate(world["alice"])
    response = api.post(
        f"/api/v1/snapshots/{FOREIGN}/restore/",
        {"parts": [], "paths": [], "target": "new_folder"},
        format="json",
    )
    assert response.status_code == 404
    patch = api.patch(f"/api/v1/accounts/{world['mine'].pk}/", {"owner": "bobby"}, format="json")
    assert patch.status_code in (403, 404)
    assert Account.objects.get(pk=world["mine"].pk).owner == world["alice"]


def test_an_admin_sees_everything(admin_client, world):
    assert admin_client.get(f"/backups/{FOREIGN}/").status_code == 200
    assert admin_client.get(f"/accounts/{FOREIGN}/").status_code == 200
    assert admin_client.get(f"/queue/{FOREIGN}/").status_code == 200


def test_a_big_folder_is_paged_folders_first_then_by_name(client, world):
    """
    GIVEN a backup whose folder holds 130 files and 3 sub-folders, names in mixed case
    WHEN its owner pages through it in the API and on the files page
    THEN the API lists folders first, then files, each by name, 50 a page, with the count;
         the page lists them the same way ignoring case; a missing folder answers 404
    """
    from destinations import listing

    names = [f"{'F' if n % 2 else 'f'}ile{n:03d}" for n in range(130)]
    entries = [listing.Entry(path=f"site/{name}", type="file", size=n) for n, name in enumerate(names)]
    entries += [listing.Entry(path=f"site/{name}", type="dir") for name in ("zeta", "Alpha", "beta")]
    snapshot = world["my_snapshot"]
    snapshot.listing_root = listing.build(reversed(entries))
    snapshot.save()
    client.force_login(world["alice"])

    api = [client.get(f"/api/v1/snapshots/{snapshot.pk}/files/?path=site&page={n}").json() for n in (1, 2, 3)]
    page = client.get(f"/backups/{snapshot.pk}/files/?path=site").content.decode()

    assert api[0]["count"] == 133
    listed = [row["name"] for answer in api for row in answer["results"]]
    assert listed == ["Alpha", "beta", "zeta", *sorted(names)]
    assert [len(answer["results"]) for answer in api] == [50, 50, 33]
    assert api[0]["results"][0] == {
        "name": "Alpha",
        "path": "site/Alpha",
        "type": "dir",
        "size": 0,
        "mtime": None,
    }
    shown = [
        name for name in ["Alpha", "beta", "zeta", *names] if f">{name}<" in page or f"> {name}<" in page
    ]
    assert page.index(">Alpha<") < page.index(">beta<") < page.index(">zeta<") < page.index("file000")
    assert page.index("file000") < page.index("File001") < page.index("file002")
    assert len(shown) == 100
    assert client.get(f"/api/v1/snapshots/{snapshot.pk}/files/?path=nowhere").status_code == 404
    assert client.get(f"/backups/{snapshot.pk}/files/?path=nowhere").status_code == 404

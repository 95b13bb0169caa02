"""Strict request bodies: every API route refuses a JSON body that is not an object."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from backupsite.api_urls import router
from destinations import listing
from destinations.models import Destination, Engine
from jobs import queue
from jobs.models import Account, BackupJob, NotificationTarget, QueueItem, Snapshot

pytestmark = pytest.mark.django_db

NOT_OBJECTS = ["[1, 2]", "null", '"x"', "3", "true"]
WRITES = {"post", "put", "patch", "delete"}


def _routes() -> list[tuple[str, str, str]]:
    """(basename, regex, method) for every writing route the API's router serves."""
    found = []
    for pattern in router.urls:
        actions = getattr(pattern.callback, "actions", None) or {}
        regex = pattern.pattern.regex.pattern
        if "format" in regex:
            continue
        name = getattr(pattern, "name", "") or ""
        basename = name.rsplit("-", 1)[0]
        for method in sorted(WRITES & set(actions)):
            found.append((basename, regex, method))
    return found


ROUTES = _routes()


def test_the_walk_covers_every_family_and_the_restore_routes() -> None:
    families = {basename for basename, _regex, _method in ROUTES}
    assert families == {"destination", "account", "job", "queue", "snapshot", "client", "notification-target"}
    regexes = " ".join(regex for _b, regex, _m in ROUTES)
    for action in ("restore", "download", "validate", "reindex", "run", "abort", "lock", "unlock"):
        assert f"/{action}/" in regexes


@pytest.fixture
def world(tmp_path: Any) -> dict[str, Any]:
    """One object of each kind, so that every detail route has something to act on."""
    destination = Destination(name="strict-dest", host="127.0.0.1", port=1, username="backup", timeout=1)
    destination.set_password("pw")
    destination.save()
    client_user = get_user_model().objects.create_user("strict-client", password="x-Strict-pw-1")
    account = Account.objects.create(username="strictbob", home=str(tmp_path), owner=client_user)
    job = BackupJob.objects.create(name="strict-nightly", destination=destination)
    job.accounts.set([account])
    root = listing.build(
        [listing.Entry("public_html", "dir"), listing.Entry("public_html/a", "file", size=1)]
    )
    snapshot = Snapshot.objects.create(
        destination=destination,
        account=account,
        account_name=account.username,
        engine=Engine.CPANEL,
        path="2025-07-04/accounts/strictbob.tar.gz",
        created=datetime(2025, 7, 4, tzinfo=UTC),
        state=Snapshot.State.COMPLETE,
        parts=[{"kind": "homedir", "name": "", "size": 1}],
        listing_root=root,
    )
    item = queue.enqueue(QueueItem.Kind.BACKUP, dispatch=False, title="a run", job=job)
    target = NotificationTarget(name="strict-target", events=["backup_failed"])
    target.set_url("ops@example.com", "ops@example.com")
    target.save()
    return {
        "destination": destination.pk,
        "account": account.pk,
        "job": job.pk,
        "queue": item.pk,
        "snapshot": snapshot.pk,
        "client": client_user.pk,
        "notification-target": target.pk,
    }


def _state() -> dict[str, Any]:
    """Everything a write could change, to compare before and after."""
    return {
        "queue": list(QueueItem.objects.order_by("pk").values_list("pk", "status")),
        "destinations": list(Destination.objects.values_list("pk", "name", "updated")),
        "accounts": list(Account.objects.values_list("pk", "username", "owner")),
        "jobs": list(BackupJob.objects.values_list("pk", "name", "enabled")),
        "snapshots": list(Snapshot.objects.values_list("pk", "locked")),
        "users": list(get_user_model().objects.values_list("pk", "username", "password")),
        "targets": list(NotificationTarget.objects.values_list("pk", "name", "enabled", "last_sent")),
    }


def _url(regex: str, pk: int) -> str:
    path = regex.lstrip("^").rstrip("$")
    path = re.sub(r"\(\?P<pk>[^)]*\)", str(pk), path)
    return "/api/v1/" + path


@pytest.mark.parametrize("basename", sorted({b for b, _r, _m in ROUTES}))
def test_every_route_of_the_family_refuses_a_body_that_is_not_an_object(
    basename: str, world: dict[str, Any], admin_user: Any
) -> None:
    """
    GIVEN an admin's token and one object of each kind
    WHEN any writing route of the family (create, update, delete and every action) gets a
         JSON body that is an array, null, a string, a number or a boolean
    THEN it answers 400 saying the body must be an object, and nothing changed: no queue
         item, no lock, no run, no deletion
    """
    api = APIClient()
    api.force_authenticate(admin_user)
    before = _state()
    routes = [(regex, method) for b, regex, method in ROUTES if b == basename]
    assert routes
    for regex, method in routes:
        url = _url(regex, world[basename])
        for body in NOT_OBJECTS:
            response = getattr(api, method)(url, data=body, content_type="application/json")
            assert response.status_code == 400, (method, url, body, response.status_code)
            assert "must be a JSON object" in json.dumps(response.json()), (method, url, body)
    assert _state() == before


@pytest.mark.parametrize("action", ["restore", "download"])
def test_a_client_restore_with_a_list_body_queues_nothing(action: str, world: dict[str, Any]) -> None:
    """
    GIVEN the client who owns the account
    WHEN they post `[1, 2]` or `null` to restore or download (read as "everything" before)
    THEN 400, and no queue item was created
    """
    api = APIClient()
    api.force_authenticate(get_user_model().objects.get(username="strict-client"))
    count = QueueItem.objects.count()
    for body in ("[1, 2]", "null"):
        response = api.post(
            f"/api/v1/snapshots/{world['snapshot']}/{action}/", data=body, content_type="application/json"
        )
        assert response.status_code == 400
        assert response.json() == {
            "detail": f"The request body must be a JSON object, such as {{}}; got {'an array' if body.startswith('[') else 'null'}."
        }
    assert QueueItem.objects.count() == count
    ok = api.post(
        f"/api/v1/snapshots/{world['snapshot']}/{action}/", data={"whole_account": True}, format="json"
    )
    assert ok.status_code == 202, ok.json()  # the same request as an object is queued

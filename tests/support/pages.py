"""Every page of the panel with real objects behind it, for the tests that walk all of them
(security headers, accessibility, assets, screenshots).

`showcase()` stores one of each kind of object (no FTP needed: backups are rows and a
listing); `page_urls()` turns every named URL pattern into URLs for those objects, and fails
for a pattern it has no sample for, so a new page cannot slip past the walks unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

ADMIN = ("showadmin", "show-admin-pw-2026")
CLIENT = ("showclient", "show-client-pw-2026")

# Patterns that are not pages: they only act on a POST, or hand out a file or JSON.
NOT_PAGES = {
    "destinations:validate",
    "destinations:reindex",
    "destinations:verify",
    "destinations:status",
    "jobs:job-run",
    "jobs:client-invite",
    "jobs:notification-enable",
    "jobs:notification-test",
    "jobs:queue-abort",
    "jobs:queue-rows",
    "jobs:dashboard-runs",
    "jobs:account-discover",
    "jobs:discovery-schedule",
    "jobs:snapshot-restore",
    "jobs:snapshot-download",
    "jobs:snapshot-lock",
    "jobs:snapshot-unlock",
    "jobs:download",
    "logout",
    "api-schema",
}


def patterns(resolver: Any = None, namespace: str = ""):
    """(name, kwarg names) of every named URL pattern."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from patterns(entry, ns)
        elif isinstance(entry, URLPattern) and entry.name:
            kwargs = set(entry.pattern.regex.groupindex)
            if "format" in kwargs:
                continue
            yield f"{namespace}{entry.name}", kwargs


@dataclass
class Showcase:
    admin: Any
    client: Any
    destination: Any
    account: Any
    snapshot: Any
    job: Any
    item: Any
    download: Any
    target: Any


def showcase() -> Showcase:
    from django.contrib.auth import get_user_model

    from destinations import listing
    from destinations.models import Destination
    from jobs.models import Account, BackupJob, NotificationTarget, QueueItem, Snapshot

    users = get_user_model().objects
    admin = users.create_superuser(ADMIN[0], email="admin@example.com", password=ADMIN[1])
    client = users.create_user(CLIENT[0], email="client@example.com", password=CLIENT[1])
    destination = Destination(name="offsite", host="192.0.2.10", username="backup", directory="backups")
    destination.set_password("pw")
    destination.save()
    account = Account.objects.create(username="showsite", home="/home/showsite", owner=client)
    entries = [
        listing.Entry(path="public_html", type="dir"),
        listing.Entry(path="public_html/index.html", type="file", size=1_234, mtime=1_700_000_000),
        listing.Entry(path="mail", type="dir"),
        listing.Entry(path="notes.txt", type="file", size=99, mtime=1_700_000_000),
    ]
    snapshot = Snapshot.objects.create(
        destination=destination,
        account=account,
        account_name=account.username,
        engine="native",
        path="showsite/20261201T021500Z-0000abcd",
        created=timezone.now() - timedelta(hours=3),
        state="complete",
        size=5_000_000,
        parts=[
            {"kind": "home", "name": "", "size": 4_000_000},
            {"kind": "database", "name": "showsite_wp", "size": 1_000_000},
        ],
        listing_root=listing.build(entries),
    )
    job = BackupJob.objects.create(name="nightly", destination=destination)
    job.accounts.add(account)
    item = QueueItem.objects.create(
        kind="backup",
        status="running",
        job=job,
        account=account,
        progress=42,
        bytes_done=2_100_000,
        bytes_total=5_000_000,
        log=["connected", "uploading packs"],
        requested_by=admin,
    )
    download = QueueItem.objects.create(
        kind="download",
        status="completed",
        account=account,
        snapshot=snapshot,
        requested_by=client,
        progress=100,
        result={"token": "t0k3n", "url": "/downloads/0/t0k3n/"},
    )
    from jobs.notify.events import save_target
    from jobs.notify.senders import parse_target

    target = save_target(NotificationTarget(name="ops mail"), parse_target("ops@example.com"))
    return Showcase(admin, client, destination, account, snapshot, job, item, download, target)


# Top-level URL names that are pages (the rest are namespaced; the API router's have no namespace).
PAGES_OUTSIDE_APPS = {
    "home",
    "login",
    "login-code",
    "two-factor",
    "preferences",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
}
# What a client may open; the rest answer 404 for them (tests/web/test_access.py pins that down).
CLIENT_PAGES = PAGES_OUTSIDE_APPS | {
    "jobs:my-accounts",
    "jobs:account-backups",
    "jobs:file-versions",
    "jobs:snapshot-detail",
    "jobs:snapshot-files",
    "jobs:queue",
    "jobs:queue-detail",
    "jobs:password",
}


def _kwargs(name: str, world: Showcase, *, staff: bool) -> dict[str, Any]:
    if name == "password_reset_confirm":
        from django.contrib.auth.tokens import default_token_generator
        from django.utils.encoding import force_bytes
        from django.utils.http import urlsafe_base64_encode

        world.client.refresh_from_db()  # the token covers last_login, which logging in changes
        return {
            "uidb64": urlsafe_base64_encode(force_bytes(world.client.pk)),
            "token": default_token_generator.make_token(world.client),
        }
    prefixes = {
        "destinations:": world.destination.pk,
        "jobs:account-": world.account.pk,
        "jobs:file-versions": world.account.pk,
        "jobs:client-": world.client.pk,
        "jobs:job-": world.job.pk,
        "jobs:notification-": world.target.pk,
        "jobs:queue-": world.item.pk if staff else world.download.pk,
        "jobs:snapshot-": world.snapshot.pk,
    }
    for prefix, pk in prefixes.items():
        if name.startswith(prefix):
            return {"pk": pk}
    raise AssertionError(f"tests/support/pages.py has no sample object for the URL pattern {name!r}: add one")


def page_urls(world: Showcase, *, staff: bool) -> list[str]:
    """Every page an admin (staff) or the showcase's client can open, and a missing page."""
    urls = []
    for name, kwargs in patterns():
        if name in NOT_PAGES or name.startswith("admin:"):
            continue
        if ":" not in name and name not in PAGES_OUTSIDE_APPS:
            continue
        if not staff and name not in CLIENT_PAGES:
            continue
        urls.append(reverse(name, kwargs=_kwargs(name, world, staff=staff) if kwargs else None))
    urls += [
        f"{reverse('jobs:snapshot-files', kwargs={'pk': world.snapshot.pk})}?path=public_html",
        f"{reverse('jobs:file-versions', kwargs={'pk': world.account.pk})}?path=notes.txt",
        "/no-such-page/",
    ]
    return urls

"""Browsing and restoring backups: the pages clients (and admins) use.

Every object comes through backupsite.access, so anything that is not the user's answers 404.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Max, OuterRef, Subquery
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from backupsite import access
from destinations import listing, names
from jobs.models import Snapshot

from .models import QueueItem
from .restore import downloads, plan
from .restore import request as restore

PAGE_SIZE = 100
PART_LABELS = {
    "homedir": "Home directory",
    "databases": "Database",
    "db_users": "Database user and grants",
    "email_accounts": "Email account",
    "forwarders_filters": "Forwarders and filters",
    "cron": "Cron jobs",
    "dns_zones": "DNS zone",
    "ssl": "SSL certificate",
    "ftp_accounts": "FTP account",
    "domains": "Domains",
    "account_settings": "Account settings",
}


@login_required
def my_accounts(request: HttpRequest) -> HttpResponse:
    """A client's home page: their accounts, each with its newest restorable backup linked."""
    restorable = access.visible_snapshots(request.user).filter(
        state=Snapshot.State.COMPLETE, flags=[], destination__disabled=False
    )
    newest = restorable.filter(account=OuterRef("pk")).order_by("-created", "-pk").values("pk")[:1]
    accounts = list(
        access.visible_accounts(request.user).annotate(newest_id=Subquery(newest)).order_by("username")
    )
    totals = {
        row["account"]: row
        for row in access.visible_snapshots(request.user)
        .values("account")
        .annotate(count=Count("pk"), latest=Max("created"))
        .order_by()
    }
    backups = restorable.in_bulk([account.newest_id for account in accounts if account.newest_id])
    none = {"count": 0, "latest": None}
    rows = [
        {**totals.get(account.pk, none), "account": account, "newest": backups.get(account.newest_id)}
        for account in accounts
    ]
    return render(request, "browse/accounts.html", {"rows": rows, "nav": "mine"})


@login_required
def account_backups(request: HttpRequest, pk: int) -> HttpResponse:
    account = access.get_account(request.user, pk)
    backups = access.visible_snapshots(request.user).filter(account=account).order_by("-created")
    page = Paginator(backups, 50).get_page(request.GET.get("page"))
    return render(request, "browse/account_backups.html", {"account": account, "page": page, "nav": "mine"})


def _parts(snapshot: Snapshot) -> list[dict[str, Any]]:
    rows = []
    for part in sorted(
        snapshot.parts,
        key=lambda p: (
            list(PART_LABELS).index(p["kind"]) if p["kind"] in PART_LABELS else 99,
            p.get("name", ""),
        ),
    ):
        rows.append(
            {
                **part,
                "label": PART_LABELS.get(part["kind"], part["kind"]),
                "value": f"{part['kind']}:{part.get('name', '')}",
                "config": part["kind"] in plan.CONFIG_KINDS,
            }
        )
    return rows


@login_required
def snapshot_detail(request: HttpRequest, pk: int) -> HttpResponse:
    snapshot = access.get_snapshot(request.user, pk)
    context = {
        "snapshot": snapshot,
        "parts": _parts(snapshot),
        "chosen": _choice(request, snapshot),
        "nav": "mine",
    }
    return render(request, "browse/snapshot.html", context)


def requested_path(params: Any) -> str:
    """The listing path a query string names: `path` (text) or `path_b64` (the base64url of its
    bytes, for names that are not UTF-8: see destinations.names); ValueError when it names
    none or is not a plain relative path."""
    return listing.normalise(names.parse(params.get("path"), params.get("path_b64")))


def _requested_path_or_404(request: HttpRequest) -> str:
    try:
        return requested_path(request.GET)
    except ValueError:
        raise Http404 from None


@login_required
def snapshot_files(request: HttpRequest, pk: int) -> HttpResponse:
    snapshot = access.get_snapshot(request.user, pk)
    path = _requested_path_or_404(request)
    query = request.GET.get("q", "").strip()
    entries: Sequence[listing.Entry]
    if query:
        entries = (
            listing.search(snapshot.listing_root, path, query, limit=500) if snapshot.listing_root else []
        )
    elif not snapshot.listing_root:
        entries = []
    else:
        found = listing.list_folder_ordered(snapshot.listing_root, path, fold_case=True)
        if found is None:
            raise Http404
        entries = found
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    crumbs = []
    walked = ""
    for part in [p for p in path.split("/") if p]:
        walked = f"{walked}/{part}" if walked else part
        crumbs.append({"name": part, "path": walked})
    context = {
        "snapshot": snapshot,
        "path": path,
        "query": query,
        "page": page,
        "crumbs": crumbs,
        "parent": path.rsplit("/", 1)[0] if "/" in path else "",
        "chosen": _choice(request, snapshot),
        "nav": "mine",
    }
    return render(request, "browse/files.html", context)


@login_required
def file_versions(request: HttpRequest, pk: int) -> HttpResponse:
    account = access.get_account(request.user, pk)
    path = _requested_path_or_404(request)
    rows = version_groups(versions(request.user, account, path))
    return render(
        request, "browse/versions.html", {"account": account, "path": path, "rows": rows, "nav": "mine"}
    )


def versions(user: Any, account: Any, path: str) -> list[dict[str, Any]]:
    """The entry at `path` in every backup of `account` the user may see, newest first.

    Each row has a `group`: consecutive backups that hold the same version of the file
    (same type, size and modification time: the listings keep no content hash) share one,
    numbered from 1 for the newest version.
    """
    rows: list[dict[str, Any]] = []
    if not path:
        return rows
    group, previous = 0, None
    for snapshot in access.visible_snapshots(user).filter(account=account).order_by("-created"):
        entry = listing.lookup(snapshot.listing_root, path) if snapshot.listing_root else None
        if entry is None:
            previous = None  # a backup without the file splits the run
            continue
        identity = (entry.type, entry.size, entry.mtime, entry.target)
        if identity != previous:
            group += 1
            previous = identity
        rows.append(
            {
                "snapshot": snapshot,
                "entry": entry,
                "mtime": datetime.fromtimestamp(entry.mtime, tz=UTC),
                "group": group,
            }
        )
    return rows


def version_groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of `versions` as one item per version: its newest and oldest backup and how
    many backups hold it, for a page that shows "same in 5 backups"."""
    groups: list[dict[str, Any]] = []
    for row in rows:
        if groups and groups[-1]["group"] == row["group"]:
            groups[-1]["rows"].append(row)
            groups[-1]["oldest"] = row["snapshot"]
        else:
            groups.append({**row, "rows": [row], "newest": row["snapshot"], "oldest": row["snapshot"]})
    return groups


CHOICE_KEY = "restore_choice"  # the session's copy of a refused form, to show it again


def _request_data(request: HttpRequest, snapshot: Snapshot, *, download: bool) -> dict[str, Any]:
    """The restore request a page's form means. A download takes only what is chosen: the same
    form also holds the restore's target and database fields."""
    post = request.POST
    whole_account = post.get("whole_account") == "1"
    parts = []
    for value in [] if whole_account else post.getlist("parts"):
        kind, _, name = value.partition(":")
        parts.append({"kind": kind, "name": name})
    data: dict[str, Any] = {"parts": parts, "paths": post.getlist("paths")}
    if "paths_b64" in post:  # names that are not UTF-8 (templates/browse/*.html)
        data["paths_b64"] = post.getlist("paths_b64")
    if whole_account:
        data["whole_account"] = True
    if download:
        return data
    data["target"] = post.get("target", "new_folder")
    database_name = post.get("database_name", "").strip()
    database_target = post.get("database_target", "")
    if database_target == "live":
        database_name = ""
    elif database_target == "new" and not database_name:
        database_name = _new_database_name(snapshot, parts, whole_account)
    data["database_name"] = database_name
    if post.get("confirm_overwrite") == "1":
        data["confirm_overwrite"] = True
    return data


def _new_database_name(snapshot: Snapshot, parts: list[dict[str, str]], whole_account: bool) -> str:
    """`<database>_restored` for the one database chosen; "" when none is."""
    chosen = restore.owned_parts(snapshot) if whole_account else parts
    databases = [
        str(p.get("name", ""))
        for p in chosen
        if isinstance(p, dict)
        and p.get("kind") == "databases"
        and not str(p.get("name", "")).startswith("pgsql:")
    ]
    if len(databases) > 1:
        raise ValidationError(
            {
                "database_name": [
                    "A new database name is for one database at a time: choose one database, "
                    "or restore over the live databases."
                ]
            }
        )
    return f"{databases[0]}_restored" if databases else ""


def _decoded(values: list[str]) -> list[str]:
    """The names of `paths_b64` values (destinations.names); what does not decode is dropped."""
    found = []
    for value in values:
        try:
            found.append(names.from_b64(value))
        except ValueError:
            continue
    return found


def _choice(request: HttpRequest, snapshot: Snapshot) -> dict[str, Any]:
    """What the user had chosen when their form was refused (shown ticked again), once."""
    saved = request.session.pop(CHOICE_KEY, None)
    if not isinstance(saved, dict) or saved.get("snapshot") != snapshot.pk:
        saved = {}
    return {
        "parts": saved.get("parts", []),
        "paths": [*saved.get("paths", []), *_decoded(saved.get("paths_b64", []))],
        "whole_account": bool(saved.get("whole_account")),
        "target": saved.get("target", "new_folder"),
        "database_target": saved.get("database_target", "new"),
        "database_name": saved.get("database_name", ""),
    }


@login_required
@require_POST
def snapshot_restore(request: HttpRequest, pk: int) -> HttpResponse:
    """First a page that says what the restore will do and what it replaces; the restore is
    queued only from that page's own button (``confirmed``)."""
    snapshot = access.get_snapshot(request.user, pk)
    try:
        data = _request_data(request, snapshot, download=False)
        if request.POST.get("confirmed") != "1":
            checked = restore.validate_request(snapshot, data, require_confirmation=False)
            return _confirmation(request, snapshot, checked)
        item = restore.submit(snapshot, data, request.user, download=False)
    except ValidationError as exc:
        return _refused(request, snapshot, exc)
    return redirect("jobs:queue-detail", pk=item.pk)


@login_required
@require_POST
def snapshot_download(request: HttpRequest, pk: int) -> HttpResponse:
    snapshot = access.get_snapshot(request.user, pk)
    try:
        data = _request_data(request, snapshot, download=True)
        item = restore.submit(snapshot, data, request.user, download=True)
    except ValidationError as exc:
        return _refused(request, snapshot, exc)
    return redirect("jobs:queue-detail", pk=item.pk)


def _confirmation(request: HttpRequest, snapshot: Snapshot, checked: plan.RestoreRequest) -> HttpResponse:
    context = {
        "snapshot": snapshot,
        "lines": restore.describe(snapshot, checked),
        "replaces": restore.replaced(snapshot, checked),
        "request_parts": [f"{kind}:{name}" for kind, name in checked.parts],
        "checked": checked,
        "back": _safe_back(request, snapshot),
        "nav": "mine",
    }
    return render(request, "browse/restore_confirm.html", context)


def _refused(request: HttpRequest, snapshot: Snapshot, exc: ValidationError) -> HttpResponse:
    for message in _messages(exc):
        messages.error(request, message)
    post = request.POST
    request.session[CHOICE_KEY] = {  # at most a page's worth: the form lists PAGE_SIZE rows
        "snapshot": snapshot.pk,
        "parts": post.getlist("parts")[:PAGE_SIZE],
        "paths": post.getlist("paths")[:PAGE_SIZE],
        "paths_b64": post.getlist("paths_b64")[:PAGE_SIZE],
        "whole_account": post.get("whole_account") == "1",
        "target": post.get("target", "new_folder"),
        "database_target": post.get("database_target", "new"),
        "database_name": post.get("database_name", ""),
    }
    return redirect(_safe_back(request, snapshot))


def _safe_back(request: HttpRequest, snapshot: Snapshot) -> str:
    from django.urls import reverse
    from django.utils.http import url_has_allowed_host_and_scheme

    back = request.POST.get("back", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return back
    return reverse("jobs:snapshot-detail", args=[snapshot.pk])


def _messages(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError) and hasattr(exc, "message_dict"):
        return [
            f"{field}: {message}" if field != "__all__" else message
            for field, msgs in exc.message_dict.items()
            for message in msgs
        ]
    if isinstance(exc, ValidationError):
        return list(exc.messages)
    return [str(exc)]


@login_required
def download_file(request: HttpRequest, pk: int, token: str) -> FileResponse:
    """A prepared download, for the user who asked for it (admins included) and nobody else;
    a client only while the account is still theirs."""
    item = (
        access.visible_queue_items(request.user)
        .filter(pk=pk, kind=QueueItem.Kind.DOWNLOAD, requested_by=request.user.pk)
        .first()
    )
    if item is None or not secrets.compare_digest(str((item.result or {}).get("token", "")), token):
        raise Http404
    path = downloads.download_file(item, user=request.user)
    if path is None:
        raise Http404
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)

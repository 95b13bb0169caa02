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
from django.db.models import Count, Max
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from backupsite import access
from destinations import listing
from destinations.models import Snapshot

from . import downloads, restore
from .models import QueueItem

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
    accounts = access.visible_accounts(request.user).order_by("username")
    totals = {
        row["account"]: row
        for row in access.visible_snapshots(request.user)
        .values("account")
        .annotate(count=Count("pk"), latest=Max("created"))
        .order_by()
    }
    none = {"count": 0, "latest": None}
    rows = [{**totals.get(account.pk, none), "account": account} for account in accounts]
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
                "config": part["kind"] in restore.CONFIG_KINDS,
            }
        )
    return rows


@login_required
def snapshot_detail(request: HttpRequest, pk: int) -> HttpResponse:
    snapshot = access.get_snapshot(request.user, pk)
    context = {"snapshot": snapshot, "parts": _parts(snapshot), "nav": "mine"}
    return render(request, "browse/snapshot.html", context)


@login_required
def snapshot_files(request: HttpRequest, pk: int) -> HttpResponse:
    snapshot = access.get_snapshot(request.user, pk)
    try:
        path = listing.normalise(request.GET.get("path", ""))
    except ValueError:
        raise Http404 from None
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
        "nav": "mine",
    }
    return render(request, "browse/files.html", context)


@login_required
def file_versions(request: HttpRequest, pk: int) -> HttpResponse:
    account = access.get_account(request.user, pk)
    try:
        path = listing.normalise(request.GET.get("path", ""))
    except ValueError:
        raise Http404 from None
    rows = versions(request.user, account, path)
    return render(
        request, "browse/versions.html", {"account": account, "path": path, "rows": rows, "nav": "mine"}
    )


def versions(user: Any, account: Any, path: str) -> list[dict[str, Any]]:
    """The entry at `path` in every backup of `account` the user may see, newest first."""
    rows: list[dict[str, Any]] = []
    if not path:
        return rows
    for snapshot in access.visible_snapshots(user).filter(account=account).order_by("-created"):
        entry = listing.lookup(snapshot.listing_root, path) if snapshot.listing_root else None
        if entry is None:
            continue
        rows.append(
            {"snapshot": snapshot, "entry": entry, "mtime": datetime.fromtimestamp(entry.mtime, tz=UTC)}
        )
    return rows


def _request_data(request: HttpRequest) -> dict[str, Any]:
    parts = []
    for value in request.POST.getlist("parts"):
        kind, _, name = value.partition(":")
        parts.append({"kind": kind, "name": name})
    return {
        "parts": parts,
        "paths": request.POST.getlist("paths"),
        "target": request.POST.get("target", "new_folder"),
        "database_name": request.POST.get("database_name", ""),
    }


@login_required
@require_POST
def snapshot_restore(request: HttpRequest, pk: int) -> HttpResponse:
    snapshot = access.get_snapshot(request.user, pk)
    return _queue(request, snapshot, download=False)


@login_required
@require_POST
def snapshot_download(request: HttpRequest, pk: int) -> HttpResponse:
    snapshot = access.get_snapshot(request.user, pk)
    return _queue(request, snapshot, download=True)


def _queue(request: HttpRequest, snapshot: Snapshot, *, download: bool) -> HttpResponse:
    try:
        item = restore.submit(snapshot, _request_data(request), request.user, download=download)
    except ValidationError as exc:
        for message in _messages(exc):
            messages.error(request, message)
        return redirect(_safe_back(request, snapshot))
    return redirect("jobs:queue-detail", pk=item.pk)


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
    """A prepared download, for the user who asked for it (admins included) and nobody else."""
    item = QueueItem.objects.filter(pk=pk, kind=QueueItem.Kind.DOWNLOAD, requested_by=request.user.pk).first()
    if item is None or not secrets.compare_digest(str((item.result or {}).get("token", "")), token):
        raise Http404
    path = downloads.download_file(item)
    if path is None:
        raise Http404
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)

"""Who may see what, for pages and the API alike: one small helper per object kind,
answering 404 for what is not yours.

Admins (staff) see everything. A client sees only the accounts they own, the restorable
backups of those accounts, and the queue items they asked for on them.

The project shell is used by every app (destinations' pages too), so it names the jobs
models by their label through the app registry instead of importing the jobs app.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.apps import apps
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import url_has_allowed_host_and_scheme
from rest_framework import permissions
from rest_framework.exceptions import NotFound
from rest_framework.request import Request

User = AbstractBaseUser | AnonymousUser


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Admin pages. A logged-in client gets 404, as for anything else that is not theirs."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


class IsStaff(permissions.BasePermission):
    """API: admins only. A logged-in client gets 404, as for anything else that is not theirs."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if not request.user.is_staff:
            raise NotFound
        return True


class StaffWritePermission(IsStaff):
    """API: clients may read what is theirs; only admins write."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return bool(request.user and request.user.is_authenticated)
        return super().has_permission(request, view)


def panel_url(request: HttpRequest, url: str | None, fallback: str) -> str:
    """`url` (a `next` parameter) when it leads inside the panel, else `fallback`: a crafted
    link must not turn the panel's redirects into a way off-site."""
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return fallback


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def is_staff(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_staff)


def visible_accounts(user: Any) -> QuerySet[Any]:
    Account = apps.get_model("jobs", "Account")
    if is_staff(user):
        return Account.objects.all()
    if not user.is_authenticated:
        return Account.objects.none()
    return Account.objects.filter(owner=user)


def visible_snapshots(user: Any) -> QuerySet[Any]:
    Snapshot = apps.get_model("jobs", "Snapshot")
    snapshots = Snapshot.objects.select_related("destination", "account")
    if is_staff(user):
        return snapshots
    if not user.is_authenticated:
        return snapshots.none()
    return snapshots.filter(
        account__owner=user, state=Snapshot.State.COMPLETE, flags=[], destination__disabled=False
    )


def visible_queue_items(user: Any) -> QuerySet[Any]:
    QueueItem = apps.get_model("jobs", "QueueItem")
    if is_staff(user):
        return QueueItem.objects.all()
    if not user.is_authenticated:
        return QueueItem.objects.none()
    return QueueItem.objects.filter(requested_by=user, account__owner=user)


def get_account(user: Any, pk: Any) -> Any:
    return get_object_or_404(visible_accounts(user), pk=pk)


def get_snapshot(user: Any, pk: Any) -> Any:
    return get_object_or_404(visible_snapshots(user), pk=pk)


def get_queue_item(user: Any, pk: Any) -> Any:
    return get_object_or_404(visible_queue_items(user), pk=pk)

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import F, OuterRef, ProtectedError, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.views.decorators.http import require_POST

from backupsite import access
from backupsite.access import is_htmx, staff_required
from destinations.models import Destination
from jobs import dashboard, queue
from jobs.backup import cycle as backup
from jobs.backup import snapshots

from .forms import AccountForm, BackupJobForm, DiscoveryScheduleForm
from .models import Account, BackupJob, QueueItem


@staff_required
def account_list(request: HttpRequest) -> HttpResponse:
    from . import schedules

    accounts = Account.objects.select_related("owner").order_by(
        F("removed_at").asc(nulls_first=True), "username"
    )
    context = {
        "accounts": accounts,
        "nav": "accounts",
        "schedule_form": DiscoveryScheduleForm(initial={"schedule": schedules.discovery_schedule()}),
    }
    return render(request, "jobs/accounts.html", context)


@staff_required
@require_POST
def account_discover(request: HttpRequest) -> HttpResponse:
    from jobs.discovery import accounts as discovery

    item = discovery.queue_discovery(requested_by=request.user)
    messages.success(request, "Looking for the accounts of this server.")
    return redirect("jobs:queue-detail", pk=item.pk)


@staff_required
@require_POST
def discovery_schedule(request: HttpRequest) -> HttpResponse:
    from . import schedules

    form = DiscoveryScheduleForm(request.POST)
    if form.is_valid():
        schedules.set_discovery_schedule(form.cleaned_data["schedule"])
        messages.success(request, "Discovery schedule saved.")
    else:
        messages.error(request, "; ".join(str(e) for e in form.errors.get("schedule", [])))
    return redirect("jobs:accounts")


@staff_required
def account_create(request: HttpRequest) -> HttpResponse:
    form = AccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        account = form.save()
        messages.success(request, f"Account {account.username} saved.")
        for warning in form.warnings:
            messages.warning(request, warning)
        for database, previous in account.taken_over():
            messages.warning(
                request,
                f"{database} now belongs to account {account.username}, no longer backed up with {previous}.",
            )
        return redirect("jobs:accounts")
    return render(request, "jobs/form.html", {"form": form, "title": "New account", "nav": "accounts"})


@staff_required
def account_edit(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=pk)
    form = AccountForm(request.POST or None, instance=account)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Account {account.username} saved.")
        for warning in form.warnings:
            messages.warning(request, warning)
        return redirect("jobs:accounts")
    return render(
        request, "jobs/form.html", {"form": form, "title": f"Account {account.username}", "nav": "accounts"}
    )


@staff_required
def account_delete(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=pk)
    if request.method == "POST":
        account.delete()
        messages.success(
            request, f"Account {account.username} removed. Its backups stay on the destinations."
        )
        return redirect("jobs:accounts")
    return render(
        request,
        "jobs/confirm_delete.html",
        {
            "object": account,
            "what": "account",
            "note": "Its backups on the destinations are not deleted.",
            "nav": "accounts",
        },
    )


@staff_required
def job_list(request: HttpRequest) -> HttpResponse:
    last_run = QueueItem.objects.filter(job=OuterRef("pk"), kind=QueueItem.Kind.BACKUP).order_by("-created")
    jobs = list(
        BackupJob.objects.select_related("destination")
        .prefetch_related("accounts")
        .annotate(last_run_id=Subquery(last_run.values("pk")[:1]))
    )
    runs = QueueItem.objects.in_bulk([job.last_run_id for job in jobs if job.last_run_id])
    # The run holding each job's lock, in one query.
    holders = dict(
        QueueItem.objects.filter(lock__in=[BackupJob.lock_key(job.pk) for job in jobs]).values_list(
            "lock", "pk"
        )
    )
    rows = [
        {
            "job": job,
            "last_run": runs.get(job.last_run_id),
            "running_id": holders.get(BackupJob.lock_key(job.pk)),
        }
        for job in jobs
    ]
    return render(request, "jobs/jobs.html", {"rows": rows, "nav": "jobs"})


@staff_required
def dashboard_page(request: HttpRequest) -> HttpResponse:
    """The admin's home page: accounts at risk, failures, runs, stored bytes, unreachable
    destinations (jobs.dashboard builds it in a fixed number of queries)."""
    return render(request, "jobs/dashboard.html", {"board": dashboard.build(), "nav": "home"})


@staff_required
def dashboard_runs(request: HttpRequest) -> HttpResponse:
    """The runs in progress, polled by the dashboard so their progress moves."""
    return render(request, "jobs/_dashboard_runs.html", {"in_progress": dashboard.in_progress()})


@staff_required
def job_create(request: HttpRequest) -> HttpResponse:
    form = BackupJobForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        job = form.save()
        messages.success(request, f"Backup job {job.name} saved.")
        return redirect("jobs:jobs")
    context = {
        "form": form,
        "title": "New backup job",
        "nav": "jobs",
        "has_destinations": Destination.objects.exists(),
    }
    return render(request, "jobs/job_form.html", context)


@staff_required
def job_edit(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(BackupJob, pk=pk)
    saved = {"schedule": job.schedule, "enabled": job.enabled}  # the form writes into the instance
    form = BackupJobForm(request.POST or None, instance=job)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Backup job {job.name} saved.")
        return redirect("jobs:jobs")
    return render(
        request,
        "jobs/job_form.html",
        {"form": form, "title": f"Backup job {job.name}", "job": job, "saved": saved, "nav": "jobs"},
    )


@staff_required
def job_delete(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(BackupJob, pk=pk)
    if request.method == "POST":
        try:
            job.delete()
        except ProtectedError:
            messages.error(request, "This job cannot be deleted now.")
            return redirect("jobs:jobs")
        messages.success(request, f"Backup job {job.name} deleted. Its backups stay on the destination.")
        return redirect("jobs:jobs")
    return render(
        request,
        "jobs/confirm_delete.html",
        {
            "object": job,
            "what": "backup job",
            "note": "Backups it wrote stay on the destination.",
            "nav": "jobs",
        },
    )


@staff_required
@require_POST
def job_run(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(BackupJob, pk=pk)
    item = backup.queue_run(job, requested_by=request.user)
    messages.success(request, f"Backup of {job.name} queued.")
    return redirect("jobs:queue-detail", pk=item.pk)


@login_required
def queue_list(request: HttpRequest) -> HttpResponse:
    return render(request, "jobs/queue.html", {"page": _queue_page(request), "nav": "queue"})


@login_required
def queue_rows(request: HttpRequest) -> HttpResponse:
    return render(request, "jobs/_queue_rows.html", {"page": _queue_page(request)})


def _queue_page(request: HttpRequest):  # type: ignore[no-untyped-def]
    items = access.visible_queue_items(request.user).select_related("job", "account", "destination")
    return Paginator(items, 25).get_page(request.GET.get("page"))


@login_required
def queue_detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = access.get_queue_item(request.user, pk)
    template = "jobs/_queue_item.html" if is_htmx(request) else "jobs/queue_item.html"
    return render(request, template, {"item": item, "nav": "queue"})


@staff_required
@require_POST
def queue_abort(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(QueueItem, pk=pk)
    if queue.request_abort(item):
        messages.info(request, "Abort requested.")
    else:
        messages.warning(request, "This item has already finished.")
    return redirect("jobs:queue-detail", pk=item.pk)


@staff_required
def snapshot_list(request: HttpRequest) -> HttpResponse:
    rows = access.visible_snapshots(request.user)
    account = request.GET.get("account", "")
    if account:
        rows = rows.filter(account_name=account)
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(request, "jobs/snapshots.html", {"page": page, "account": account, "nav": "backups"})


@staff_required
@require_POST
def snapshot_lock(request: HttpRequest, pk: int) -> HttpResponse:
    snapshots.set_locked(access.get_snapshot(request.user, pk), True)
    return redirect(access.panel_url(request, request.POST.get("next"), resolve_url("jobs:snapshots")))


@staff_required
@require_POST
def snapshot_unlock(request: HttpRequest, pk: int) -> HttpResponse:
    snapshots.set_locked(access.get_snapshot(request.user, pk), False)
    return redirect(access.panel_url(request, request.POST.get("next"), resolve_url("jobs:snapshots")))


@staff_required
def snapshot_delete(request: HttpRequest, pk: int) -> HttpResponse:
    snapshot = access.get_snapshot(request.user, pk)
    if request.method == "POST":
        item = snapshots.queue_deletion(snapshot, requested_by=request.user)
        messages.info(request, "Deletion queued.")
        return redirect("jobs:queue-detail", pk=item.pk)  # type: ignore[attr-defined]
    note = (
        "It is deleted from the destination for good."
        if not snapshot.locked
        else "It is locked: unlock it first."
    )
    return render(
        request,
        "jobs/confirm_delete.html",
        {"object": snapshot, "what": "backup", "note": note, "nav": "backups"},
    )


@staff_required
def client_list(request: HttpRequest) -> HttpResponse:
    from .clients import clients

    rows = clients().prefetch_related("accounts")
    return render(request, "jobs/clients.html", {"clients": rows, "nav": "clients"})


def _invite(request: HttpRequest, client: Any) -> None:
    """Send `client` an invitation and say on the next page how it went."""
    from .clients import InvitationError, send_invitation

    try:
        address = send_invitation(client, base_url=request.build_absolute_uri("/"))
    except InvitationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Invitation sent to {address}: the link in it works once.")


@staff_required
def client_create(request: HttpRequest) -> HttpResponse:
    from .forms import ClientForm

    form = ClientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        messages.success(request, f"Client {user.username} saved.")
        if form.cleaned_data.get("invite"):
            _invite(request, user)
        return redirect("jobs:clients")
    return render(request, "jobs/client_form.html", {"form": form, "title": "New client", "nav": "clients"})


def _client(pk: int) -> Any:
    from .clients import clients

    return get_object_or_404(clients(), pk=pk)


@staff_required
def client_edit(request: HttpRequest, pk: int) -> HttpResponse:
    from .clients import has_password
    from .forms import ClientForm

    client = _client(pk)
    form = ClientForm(request.POST or None, instance=client)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Client {client.username} saved.")
        return redirect("jobs:clients")
    return render(
        request,
        "jobs/client_form.html",
        {
            "form": form,
            "title": f"Client {client.username}",
            "client": client,
            "has_password": has_password(client),
            "nav": "clients",
        },
    )


@staff_required
@require_POST
def client_invite(request: HttpRequest, pk: int) -> HttpResponse:
    """Send (or send again) the client a link to choose their password."""
    _invite(request, _client(pk))
    return redirect("jobs:clients")


@staff_required
def client_delete(request: HttpRequest, pk: int) -> HttpResponse:
    client = _client(pk)
    if request.method == "POST":
        client.delete()
        messages.success(request, f"Client {client.username} deleted; their accounts have no client now.")
        return redirect("jobs:clients")
    return render(
        request,
        "jobs/confirm_delete.html",
        {"object": client, "what": "client", "note": "Their accounts and backups stay.", "nav": "clients"},
    )


@login_required
def password_change(request: HttpRequest) -> HttpResponse:
    from django.contrib.auth import update_session_auth_hash

    from backupsite.forms import ThrottledPasswordChangeForm

    form = ThrottledPasswordChangeForm(request, request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)
        messages.success(request, "Your password was changed.")
        return redirect("home")
    return render(
        request, "jobs/password.html", {"form": form, "title": "Change your password", "nav": "password"}
    )


@staff_required
def notification_list(request: HttpRequest) -> HttpResponse:
    from .models import Notification, NotificationTarget

    targets = NotificationTarget.objects.all()
    recent = Notification.objects.select_related("target", "queue_item")[:25]
    return render(
        request, "jobs/notifications.html", {"targets": targets, "recent": recent, "nav": "notifications"}
    )


@staff_required
def notification_create(request: HttpRequest) -> HttpResponse:
    from .forms import NotificationTargetForm

    form = NotificationTargetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        target = form.save()
        messages.success(request, f"Notification target {target.name} saved.")
        return redirect("jobs:notifications")
    return render(
        request, "jobs/form.html", {"form": form, "title": "New notification target", "nav": "notifications"}
    )


def _target(pk: int) -> Any:
    from .models import NotificationTarget

    return get_object_or_404(NotificationTarget, pk=pk)


@staff_required
def notification_edit(request: HttpRequest, pk: int) -> HttpResponse:
    from .forms import NotificationTargetForm

    target = _target(pk)
    form = NotificationTargetForm(request.POST or None, instance=target)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Notification target {target.name} saved.")
        return redirect("jobs:notifications")
    return render(
        request,
        "jobs/form.html",
        {"form": form, "title": f"Notification target {target.name}", "nav": "notifications"},
    )


@staff_required
def notification_delete(request: HttpRequest, pk: int) -> HttpResponse:
    target = _target(pk)
    if request.method == "POST":
        target.delete()
        messages.success(request, f"Notification target {target.name} deleted.")
        return redirect("jobs:notifications")
    return render(
        request,
        "jobs/confirm_delete.html",
        {
            "object": target,
            "what": "notification target",
            "note": "It gets no more messages; its message history goes with it.",
            "nav": "notifications",
        },
    )


@staff_required
@require_POST
def notification_enable(request: HttpRequest, pk: int) -> HttpResponse:
    target = _target(pk)
    target.enabled = request.POST.get("enabled") == "1"
    target.save(update_fields=["enabled", "updated"])
    messages.success(request, f"{target.name} {'enabled' if target.enabled else 'disabled'}.")
    return redirect("jobs:notifications")


@staff_required
@require_POST
def notification_test(request: HttpRequest, pk: int) -> HttpResponse:
    from jobs.notify import events as notifications

    target = _target(pk)
    error = notifications.send_test(target)
    if error:
        messages.error(request, f"The test message to {target.name} failed: {error}")
    else:
        messages.success(request, f"Test message sent to {target.name}.")
    return redirect("jobs:notifications")

"""The destination's own page and the work on it: its settings form with the reindex and
integrity-check controls, their progress, and the backups found on it. The settings pages
that need no work of this app (list, create, delete, validate) are `destinations.views`."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from backupsite.access import is_htmx, staff_required
from destinations import validated
from destinations.forms import DestinationForm
from destinations.models import Destination
from destinations.views import saved_message
from jobs.models import QueueItem, Snapshot
from jobs.reindex import sync
from jobs.verify import check


@staff_required
def destination_edit(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(Destination, pk=pk)
    before = validated.digest(destination)  # the form writes into the instance
    form = DestinationForm(request.POST or None, instance=destination)
    if request.method == "POST" and form.is_valid():
        destination = form.save()
        validated.after_save(request.session, destination, before=before)
        saved_message(request, destination, "saved")
        return redirect("destinations:edit", pk=destination.pk)
    context = {"form": form, "destination": destination, **_status_context(destination)}
    return render(request, "destinations/form.html", context)


def _status_context(destination: Destination) -> dict[str, object]:
    item = (
        QueueItem.objects.filter(kind=QueueItem.Kind.REINDEX, destination=destination)
        .order_by("-created")
        .first()
    )
    verify_item = (
        QueueItem.objects.filter(kind=QueueItem.Kind.VERIFY, destination=destination)
        .order_by("-created")
        .first()
    )
    snapshots = (
        Snapshot.objects.filter(destination=destination)
        .select_related("account__owner")
        .defer("parts", "problems", "meta", "listing_root")  # big, and not shown
        .order_by("account_name", "-created")
    )
    return {
        "reindex_item": item,
        "verify_item": verify_item,
        "busy": any(i is not None and not i.is_finished for i in (item, verify_item)),
        "snapshots": snapshots[:500],
        "snapshot_count": snapshots.count(),
    }


@staff_required
def destination_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The reindex progress and the backups found (htmx partial, polled while a reindex runs)."""
    destination = get_object_or_404(Destination, pk=pk)
    return render(
        request, "destinations/_status.html", {"destination": destination, **_status_context(destination)}
    )


@staff_required
@require_POST
def destination_reindex(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(Destination, pk=pk)
    if destination.disabled:
        messages.error(request, "This destination is disabled.")
    else:
        sync.queue_reindex(destination, requested_by=request.user)
    if is_htmx(request):
        return destination_status(request, pk)
    return redirect("destinations:edit", pk=pk)


@staff_required
@require_POST
def destination_verify(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue an integrity check reading the share of stored bytes the form asks for."""

    destination = get_object_or_404(Destination, pk=pk)
    raw = request.POST.get("read_percent", "").strip()
    error = ""
    try:
        percent = check.parse_read_percent(
            int(raw) if raw.isdigit() else raw or destination.verify_read_percent
        )
    except check.ReadPercentInvalid as exc:
        error = str(exc)
    else:
        if destination.disabled:
            error = "This destination is disabled."
        else:
            check.queue_verify(destination, percent, requested_by=request.user)
    if is_htmx(request):
        context = {"destination": destination, "verify_error": error, **_status_context(destination)}
        return render(request, "destinations/_status.html", context)
    if error:
        messages.error(request, error)
    return redirect("destinations:edit", pk=pk)

from django.contrib import messages
from django.db.models import ProtectedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from backupsite.access import is_htmx, staff_required

from . import reindex, sessions, validated
from .forms import DestinationForm
from .models import Destination, Snapshot


@staff_required
def destination_list(request: HttpRequest) -> HttpResponse:
    destinations = Destination.objects.all()
    return render(request, "destinations/list.html", {"destinations": destinations})


def _saved_message(request: HttpRequest, destination: Destination, verb: str) -> None:
    messages.success(request, f"Destination “{destination.name}” {verb}.")
    if destination.username_is_root:
        messages.warning(
            request,
            "This destination logs in as root. Create a dedicated FTP user for backups instead.",
        )


@staff_required
def destination_create(request: HttpRequest) -> HttpResponse:
    form = DestinationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        destination = form.save()
        validated.after_save(request.session, destination, before=None)
        _saved_message(request, destination, "saved")
        return redirect("destinations:edit", pk=destination.pk)
    return render(request, "destinations/form.html", {"form": form, "destination": None})


@staff_required
def destination_edit(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(Destination, pk=pk)
    before = validated.digest(destination)  # the form writes into the instance
    form = DestinationForm(request.POST or None, instance=destination)
    if request.method == "POST" and form.is_valid():
        destination = form.save()
        validated.after_save(request.session, destination, before=before)
        _saved_message(request, destination, "saved")
        return redirect("destinations:edit", pk=destination.pk)
    context = {"form": form, "destination": destination, **_status_context(destination)}
    return render(request, "destinations/form.html", context)


def _status_context(destination: Destination) -> dict[str, object]:
    from jobs.models import QueueItem

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
        reindex.queue_reindex(destination, requested_by=request.user)
    if is_htmx(request):
        return destination_status(request, pk)
    return redirect("destinations:edit", pk=pk)


@staff_required
@require_POST
def destination_verify(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue an integrity check reading the share of stored bytes the form asks for."""
    from jobs import verify

    destination = get_object_or_404(Destination, pk=pk)
    raw = request.POST.get("read_percent", "").strip()
    error = ""
    try:
        percent = verify.parse_read_percent(
            int(raw) if raw.isdigit() else raw or destination.verify_read_percent
        )
    except verify.ReadPercentInvalid as exc:
        error = str(exc)
    else:
        if destination.disabled:
            error = "This destination is disabled."
        else:
            verify.queue_verify(destination, percent, requested_by=request.user)
    if is_htmx(request):
        context = {"destination": destination, "verify_error": error, **_status_context(destination)}
        return render(request, "destinations/_status.html", context)
    if error:
        messages.error(request, error)
    return redirect("destinations:edit", pk=pk)


@staff_required
def destination_delete(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(Destination, pk=pk)
    if request.method == "POST":
        name = destination.name
        try:
            destination.delete()
        except ProtectedError:
            messages.error(request, destination.in_use_message())
            return redirect("destinations:edit", pk=pk)
        messages.success(request, f"Destination “{name}” deleted. Its files on the server were not touched.")
        return redirect("destinations:list")
    return render(request, "destinations/delete.html", {"destination": destination})


@staff_required
@require_POST
def destination_validate(request: HttpRequest) -> HttpResponse:
    """Validate what the form holds now, saved or not (htmx partial)."""
    instance = None
    saved_digest = None
    pk = request.POST.get("destination_id", "")
    if pk.isdigit():
        instance = get_object_or_404(Destination, pk=int(pk))
        saved_digest = validated.digest(instance)  # before the form writes into it
    form = DestinationForm(request.POST, instance=instance)
    if not form.is_valid():
        return render(request, "destinations/_validate.html", {"form_errors": form.errors})
    candidate = form.save(commit=False)
    report = sessions.validate_destination(candidate, holder=f"Validate by {request.user.get_username()}")
    recorded = validated.remember(request.session, candidate, report.ok, saved_digest=saved_digest)
    context = {
        "report": report,
        "destination": Destination.objects.get(pk=candidate.pk) if recorded else None,
    }
    return render(request, "destinations/_validate.html", context)

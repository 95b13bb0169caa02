from django.contrib import messages
from django.db.models import ProtectedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from backupsite.access import staff_required
from destinations import sessions, validated
from destinations.models import Destination

from .forms import DestinationForm


@staff_required
def destination_list(request: HttpRequest) -> HttpResponse:
    destinations = Destination.objects.all()
    return render(request, "destinations/list.html", {"destinations": destinations})


def saved_message(request: HttpRequest, destination: Destination, verb: str) -> None:
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
        saved_message(request, destination, "saved")
        return redirect("destinations:edit", pk=destination.pk)
    return render(request, "destinations/form.html", {"form": form, "destination": None})


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

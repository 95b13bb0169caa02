from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from backupsite.access import staff_required

from . import validate
from .forms import DestinationForm
from .models import Destination


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
        _saved_message(request, destination, "saved")
        return redirect("destinations:edit", pk=destination.pk)
    return render(request, "destinations/form.html", {"form": form, "destination": None})


@staff_required
def destination_edit(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(Destination, pk=pk)
    form = DestinationForm(request.POST or None, instance=destination)
    if request.method == "POST" and form.is_valid():
        destination = form.save()
        _saved_message(request, destination, "saved")
        return redirect("destinations:edit", pk=destination.pk)
    return render(request, "destinations/form.html", {"form": form, "destination": destination})


@staff_required
def destination_delete(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(Destination, pk=pk)
    if request.method == "POST":
        name = destination.name
        destination.delete()
        messages.success(request, f"Destination “{name}” deleted. Its files on the server were not touched.")
        return redirect("destinations:list")
    return render(request, "destinations/delete.html", {"destination": destination})


@staff_required
@require_POST
def destination_validate(request: HttpRequest) -> HttpResponse:
    """Validate what the form holds now, saved or not (htmx partial)."""
    instance = None
    pk = request.POST.get("destination_id", "")
    if pk.isdigit():
        instance = get_object_or_404(Destination, pk=int(pk))
    form = DestinationForm(request.POST, instance=instance)
    if not form.is_valid():
        context = {"form_errors": form.errors}
        return render(request, "destinations/_validate.html", context)
    candidate = form.save(commit=False)
    report = validate.run(candidate.ftp_settings())
    return render(request, "destinations/_validate.html", {"report": report})

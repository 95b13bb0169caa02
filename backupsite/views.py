from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Admins start at their destinations; clients at their own accounts."""
    if request.user.is_staff:
        return redirect("destinations:list")
    return redirect("jobs:my-accounts")

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login

from jobs import views as jobs_views

from . import throttle, twofactor
from .forms import CodeForm, PreferencesForm, TurnOffForm
from .models import Preferences


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Admins start at the dashboard; clients at their own accounts."""
    if request.user.is_staff:
        return jobs_views.dashboard_page(request)
    return redirect("jobs:my-accounts")


class LoginView(auth_views.LoginView):
    """Django's login; for a user with two-factor on, the password only opens the code step."""

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.get_user()
        if twofactor.has_two_factor(user):
            twofactor.start_pending(self.request, user, self.get_success_url())
            return redirect("login-code")
        return super().form_valid(form)


@never_cache
@sensitive_post_parameters("code")
def login_code(request: HttpRequest) -> HttpResponse:
    """The login's second step: the password was right, now the code."""
    state = twofactor.pending(request)
    user = None
    if state is not None:
        user = get_user_model().objects.filter(pk=state["user"], is_active=True).first()
    if state is None or user is None:
        twofactor.end_pending(request)
        messages.info(request, "Log in again: the step for the code expired.")
        return redirect("login")
    if throttle.is_locked(request, user.get_username()):
        return throttle.lockout_response(request)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = twofactor.check_code(user, form.cleaned_data["code"])
        if device is not None:
            twofactor.end_pending(request)
            auth_login(request, user, backend=state["backend"])
            otp_login(request, device)
            return redirect(state["next"])
        throttle.count_failure(request, user.get_username())  # may lock: axes' middleware answers then
        form.add_error("code", "That code is not right (or was already used). Try the next one.")
    return render(request, "registration/login_code.html", {"form": form})


@never_cache
@sensitive_post_parameters("code", "password")
@login_required
def two_factor(request: HttpRequest) -> HttpResponse:
    """Turn two-factor login on (QR code and secret, confirmed by a first code) or off."""
    user: Any = request.user
    if twofactor.has_two_factor(user):
        off = TurnOffForm(request, request.POST or None)
        if request.method == "POST" and off.is_valid():
            twofactor.turn_off(user)
            messages.success(request, "Two-factor login is off: the password alone logs you in.")
            return redirect("two-factor")
        return render(request, "registration/two_factor.html", {"on": True, "form": off, "nav": "two-factor"})
    device = twofactor.pending_device(user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if twofactor.confirm(device, form.cleaned_data["code"]):
            otp_login(request, device)  # this session gave the code
            messages.success(request, "Two-factor login is on: from now on the login asks for a code.")
            return redirect("two-factor")
        form.add_error(
            "code", "That code does not match the secret: check the app's clock and try the next one."
        )
    context = {
        "on": False,
        "form": form,
        "qr_svg": twofactor.qr_svg(device),
        "secret": twofactor.secret_text(device),
        "nav": "two-factor",
    }
    return render(request, "registration/two_factor.html", context)


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    """The user's own settings (admins and clients alike): for now, the time zone."""
    instance = Preferences.objects.filter(user=request.user).first() or Preferences(user=request.user)  # type: ignore[misc]
    form = PreferencesForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Your preferences were saved.")
        return redirect("preferences")
    return render(
        request, "backupsite/preferences.html", {"form": form, "title": "Preferences", "nav": "preferences"}
    )

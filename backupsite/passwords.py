"""'Forgot password' and the set-password link, on Django's password-reset machinery.

Invitations (jobs/clients.py) send the same kind of link; the confirm page is shared.

Asking for links is limited, so the page cannot be used to flood someone's mailbox or the
mail server: at most RESET_PER_ADDRESS requests an hour for one email address (whether it
has a login or not, so the limit tells nothing about the address) and RESET_PER_CLIENT from
one client address (the one login throttling counts). The counts live in the cache (Redis,
shared by every process of the panel).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.core.cache import cache
from django.http import HttpResponse
from django.urls import path, reverse_lazy

from .throttle import client_ip

logger = logging.getLogger(__name__)

RESET_PER_ADDRESS = 5
RESET_PER_CLIENT = 20
RESET_WINDOW = 3600  # seconds
TOO_MANY_RESETS = (
    "Too many requests for a password link from here or for this address. "
    "Try again in an hour, or ask your hosting provider."
)


class ForgotPasswordForm(PasswordResetForm):
    """Django's reset form, with two differences.

    A client who was invited but never chose a password (their password is unusable) may ask
    for a link too: they lost the invitation, not their right to log in. And the mail goes
    out in a thread, so the answer takes as long whether the address has a login or not:
    the page says the same either way, and its timing must not tell either."""

    def get_users(self, email: str) -> Iterator[Any]:
        users = get_user_model()._default_manager.filter(email__iexact=email, is_active=True)
        return (user for user in users if user.email.casefold() == email.casefold())

    def send_mail(self, *args: Any, **kwargs: Any) -> None:
        # PasswordResetForm.send_mail logs and swallows a failure of the mail server.
        threading.Thread(
            target=super().send_mail, args=args, kwargs=kwargs, name="password-reset-mail", daemon=True
        ).start()


def _over_limit(key: str, limit: int) -> bool:
    """Count one request against `key`; True once more than `limit` came within the window."""
    cache.add(key, 0, timeout=RESET_WINDOW)
    try:
        return cache.incr(key) > limit
    except ValueError:  # expired between add and incr: this request is the first again
        cache.set(key, 1, timeout=RESET_WINDOW)
        return False


class ForgotPasswordView(auth_views.PasswordResetView):
    """Django's reset page, with the limits of this module's docstring."""

    form_class = ForgotPasswordForm
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        email = form.cleaned_data["email"].strip().casefold()
        address = hashlib.sha256(email.encode()).hexdigest()
        try:
            # Both are counted, so a client who spreads requests over addresses is still held.
            over_client = _over_limit(f"backupsite:reset:client:{client_ip(self.request)}", RESET_PER_CLIENT)
            over_address = _over_limit(f"backupsite:reset:address:{address}", RESET_PER_ADDRESS)
        except Exception:  # the cache (Redis) is down: a lost link would be worse than a missing limit
            logger.exception("password reset limits could not be checked")
            over_client = over_address = False
        if over_client or over_address:
            form.add_error(None, TOO_MANY_RESETS)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().form_valid(form)


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """The page behind an invitation or reset link. A link that is not (or no longer) valid
    answers 404 with a way to ask for a new one, like any other address that leads nowhere."""

    success_url = reverse_lazy("password_reset_complete")

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> Any:
        if not context.get("validlink"):
            kwargs.setdefault("status", 404)
        return super().render_to_response(context, **kwargs)


urlpatterns = [
    path("login/forgot/", ForgotPasswordView.as_view(), name="password_reset"),
    path("login/forgot/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "login/set-password/<uidb64>/<token>/",
        SetPasswordView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "login/set-password/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]

"""'Forgot password' and the set-password link, on Django's password-reset machinery.

Invitations (jobs/clients.py) send the same kind of link; the confirm page is shared.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.urls import path, reverse_lazy


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


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """The page behind an invitation or reset link. A link that is not (or no longer) valid
    answers 404 with a way to ask for a new one, like any other address that leads nowhere."""

    success_url = reverse_lazy("password_reset_complete")

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> Any:
        if not context.get("validlink"):
            kwargs.setdefault("status", 404)
        return super().render_to_response(context, **kwargs)


urlpatterns = [
    path(
        "login/forgot/",
        auth_views.PasswordResetView.as_view(
            form_class=ForgotPasswordForm,
            email_template_name="registration/password_reset_email.txt",
            subject_template_name="registration/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
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

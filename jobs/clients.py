"""Client users: hosting customers who browse and restore the backups of their own accounts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from backupsite.errors import Error

from .models import Account


def clients() -> Any:
    return get_user_model().objects.filter(is_staff=False, is_superuser=False).order_by("username")


@transaction.atomic
def assign_accounts(user: Any, accounts: Iterable[Account]) -> None:
    """Make `accounts` exactly the accounts `user` owns (an account has one owner at most)."""
    ids = [account.pk for account in accounts]
    Account.objects.filter(owner=user).exclude(pk__in=ids).update(owner=None)
    Account.objects.filter(pk__in=ids).update(owner=user)


@transaction.atomic
def save_client(user: Any, *, password: str = "", accounts: Iterable[Account] | None = None) -> Any:
    """Save a client user (never staff), set its password when given, assign its accounts."""
    user.is_staff = False
    user.is_superuser = False
    if password:
        user.set_password(password)
    elif user.pk is None:
        user.set_unusable_password()
    user.save()
    if accounts is not None:
        assign_accounts(user, accounts)
    return user


class InvitationError(Error):
    """The invitation could not be sent; the message says why, for the admin who asked."""


def has_password(user: Any) -> bool:
    """Whether the client has chosen a password (an invited client has not, until the link)."""
    return bool(user.has_usable_password())


def send_invitation(user: Any, *, base_url: str) -> str:
    """Mail the client a one-time link to choose their password; answers the address it went to.

    The link is Django's password-reset link (the same token and confirm page as "Forgot
    password"), so it stops working once used, when the password changes, or after
    PASSWORD_RESET_TIMEOUT. Sending again is how an admin resends it. `base_url` is the
    panel's address as the admin reached it (scheme and host), for the link in the mail."""
    import smtplib

    from django.conf import settings
    from django.contrib.auth.tokens import default_token_generator
    from django.core.mail import EmailMessage
    from django.template.loader import render_to_string
    from django.urls import reverse
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    if not user.email:
        raise InvitationError(f"{user.username} has no email address: add one, then send the invitation.")
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    context = {
        "user": user,
        "link": base_url.rstrip("/") + path,
        "login": base_url.rstrip("/") + reverse("login"),
        "hours": settings.PASSWORD_RESET_TIMEOUT // 3600,
        "first": not has_password(user),
    }
    subject = "".join(render_to_string("registration/invitation_subject.txt", context).splitlines())
    body = render_to_string("registration/invitation_email.txt", context)
    try:
        EmailMessage(subject, body, to=[user.email]).send()
    except (smtplib.SMTPException, OSError) as exc:
        raise InvitationError(f"The mail server did not take the invitation to {user.email}: {exc}") from None
    return str(user.email)

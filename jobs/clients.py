"""Client users: hosting customers who browse and restore the backups of their own accounts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

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

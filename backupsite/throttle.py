"""Login throttling, on django-axes: which address a request comes from, the lockout page, and
the two calls the code step of two-factor login needs (is this login locked, count a failure).

Axes counts failures per username and per address (settings.AXES_LOCKOUT_PARAMETERS); an
admin unlocks in the admin's "Access attempts" or with `manage.py axes_reset_username NAME`.
"""

import ipaddress
import math
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def _address(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The address failures are counted against.

    Without a proxy, REMOTE_ADDR: the peer of the TCP connection, which the client cannot
    choose. Behind the TLS proxy (BEHIND_TLS_PROXY), the last X-Forwarded-For hop: the proxy
    appends the address it saw, and everything before it is whatever the client sent.
    """
    remote = _address(request.META.get("REMOTE_ADDR"))
    if settings.BEHIND_TLS_PROXY:
        hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        forwarded = _address(hops[-1])
        if forwarded:
            return forwarded
    return remote


def lockout_minutes(request: HttpRequest | None = None) -> int:
    cool_off = get_cool_off(request)
    return math.ceil(cool_off.total_seconds() / 60) if cool_off else 0


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """The login page's lockout message (429), instead of axes' bare text.

    A refused attempt during the lockout starts the cool-off again (axes' default), so
    "N minutes" holds from the moment the page is shown.
    """
    return render(
        request,
        "registration/locked_out.html",
        {"minutes": lockout_minutes(request)},
        status=429,
    )


def is_locked(request: HttpRequest, username: str) -> bool:
    return not AxesProxyHandler.is_allowed(request, {"username": username})


def count_failure(request: HttpRequest, username: str) -> None:
    """A wrong second factor counts like a wrong password (axes listens to this signal)."""
    user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)

"""Two-factor login with TOTP codes (django-otp keeps the secret, in its TOTPDevice).

The panel runs as root: a stolen admin password alone must not be enough. A user turns it on
from the "Two-factor" page (a QR code and the secret, confirmed with a first code); from then
on the login asks for a code after the password, and a session that did not give one (begun
before it was turned on, or by any other way of logging in) is logged out.
"""

import time
from collections.abc import Callable
from typing import Any

import qrcode
import qrcode.image.svg
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django_otp import match_token, user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

DEVICE_NAME = "Authenticator app"
# The step between password and code: who passed the password, and until when.
PENDING_SESSION_KEY = "backupsite_pending_login"
PENDING_SECONDS = 300


def has_two_factor(user: Any) -> bool:
    return bool(user.is_authenticated and user_has_device(user, confirmed=True))


def pending_device(user: Any) -> TOTPDevice:
    """The device being set up: the same one (and secret) until it is confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def secret_text(device: TOTPDevice) -> str:
    """The secret as authenticator apps take it typed in: base32, in groups of four."""
    import base64

    b32 = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(b32[i : i + 4] for i in range(0, len(b32), 4))


def qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URL as an inline SVG (no image request, nothing stored)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=16)
    svg: str = image.to_string(encoding="unicode")
    return svg


def confirm(device: TOTPDevice, code: str) -> bool:
    """Turn two-factor on once the user shows a code their app computed from the secret."""
    with transaction.atomic():
        if not device.verify_token(code.strip()):
            return False
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        # Any other half-set-up device is dropped: one secret is the truth.
        TOTPDevice.objects.filter(user=device.user, confirmed=False).delete()
    return True


def check_code(user: Any, code: str) -> Any:
    """The confirmed device that accepts `code`, or None (django-otp also refuses replays)."""
    return match_token(user, code.strip())


def turn_off(user: Any) -> None:
    TOTPDevice.objects.filter(user=user).delete()


# --- the step between password and code -------------------------------------------------


def start_pending(request: HttpRequest, user: Any, redirect_to: str) -> None:
    # A new session key: the password was passed in this session, and a key planted by
    # someone else (session fixation) must not let them skip it and try codes themselves.
    request.session.cycle_key()
    request.session[PENDING_SESSION_KEY] = {
        "user": user.pk,
        "backend": user.backend,
        "until": time.time() + PENDING_SECONDS,
        "next": redirect_to,
    }


def pending(request: HttpRequest) -> dict[str, Any] | None:
    data = request.session.get(PENDING_SESSION_KEY)
    if not isinstance(data, dict) or data.get("until", 0) < time.time():
        request.session.pop(PENDING_SESSION_KEY, None)
        return None
    return data


def end_pending(request: HttpRequest) -> None:
    request.session.pop(PENDING_SESSION_KEY, None)


class RequireCodeMiddleware:
    """A logged-in user with two-factor on whose session gave no code is logged out.

    After django-otp's OTPMiddleware (which tells whether the session is verified). Pages
    send them to the login; the API goes on as anonymous (token auth is not a session).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user: Any = request.user
        if user.is_authenticated and not user.is_verified() and has_two_factor(user):
            logout(request)
            if not request.path.startswith("/api/"):
                return redirect_to_login(request.get_full_path())
        return self.get_response(request)

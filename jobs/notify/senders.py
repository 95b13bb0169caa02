"""The one seam to the outside for notifications: email through Django's mail settings, every
other service through Apprise (https://github.com/caronc/apprise). Nothing else sends.

A target URL is either an email address (`bob@example.com` or `mailto:bob@example.com`) or an
Apprise URL (`slack://...`, `tgram://...`, `discord://...`, `matrixs://...`, `json://host/path`,
...). Apprise URLs carry secrets; `redact` gives the form that may be shown.
"""

from __future__ import annotations

import logging
import re
import smtplib
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import apprise
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email

from backupsite.errors import Error

MAX_URL = 2000
# Query parameters whose values are secrets whatever the service: Apprise's custom HTTP headers
# (`+Name=`) and GET parameters (`-name=`), and anything named like a credential.
_SECRET_PARAM = re.compile(r"^[+-]|token|key|secret|pass|auth|sig|webhook|credential", re.IGNORECASE)


class SendFailed(Error):
    """The message did not get through; `message` says why (never with the target's secrets)."""


@dataclass(frozen=True)
class ParsedTarget:
    url: str  # what is stored (encrypted) and used to send
    display: str  # what pages and the API show
    email: str  # the address, for an email target; "" for an Apprise URL


def _manager() -> apprise.manager_plugins.NotificationManager:
    from apprise.manager_plugins import NotificationManager

    return NotificationManager()


def parse_target(raw: str) -> ParsedTarget:
    """Check a target URL as typed; ValidationError with a message an admin can act on."""
    url = raw.strip()
    if not url:
        raise ValidationError("Enter an email address or an Apprise URL.")
    if len(url) > MAX_URL or any(char.isspace() or ord(char) < 32 for char in url):
        raise ValidationError(f"The URL must be one line without spaces, at most {MAX_URL} characters.")
    address = email_address(url)
    if address is not None:
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError(f"{address!r} is not an email address.") from None
        return ParsedTarget(url=f"mailto:{address}", display=address, email=address)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if not scheme:
        raise ValidationError(
            "Enter an email address, or an Apprise URL such as slack://..., tgram://..., "
            "discord://..., matrixs://... or json://host/path."
        )
    manager = _manager()
    if scheme not in manager:
        raise ValidationError(
            f"Apprise does not know the scheme {scheme}://. See "
            "https://github.com/caronc/apprise/wiki for the services and their URLs."
        )
    with apprise.LogCapture(level=logging.WARNING) as log:
        plugin = apprise.Apprise.instantiate(url, asset=_asset())
    if plugin is None:
        reasons = [
            _scrub(line.split(" - ", 2)[-1], url)
            for line in log.getvalue().splitlines()
            if " - " in line and "Could not load" not in line and "Unparseable" not in line
        ]
        service = getattr(manager[scheme], "service_name", scheme)
        detail = f": {'; '.join(reason.rstrip('.') for reason in reasons)}" if reasons else ""
        raise ValidationError(f"This is not a valid {service} URL{detail}.")
    return ParsedTarget(url=url, display=redact(url, plugin.url(privacy=True)), email="")


def email_address(url: str) -> str | None:
    """The address of an email target (`bob@example.com`, `mailto:bob@example.com`); None for
    anything else. Apprise's own `mailto://user:pass@host` (its SMTP client) is an Apprise URL."""
    if url.lower().startswith("mailto:") and not url[7:].startswith("//"):
        return url[7:].split("?", 1)[0]
    if "://" not in url and "@" in url:
        return url
    return None


def redact(url: str, private: str) -> str:
    """The URL as it may be shown: Apprise's private form (tokens and passwords cut to their
    ends) keeping only the query parameters the admin wrote, secret-looking values masked."""
    written = {name.lower() for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    parts = urlsplit(private)
    query = [
        (name, "****" if _SECRET_PARAM.search(name) else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name.lower() in written
    ]
    path = parts.path if query else parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query, safe="*:"), ""))


def _scrub(text: str, url: str, display: str = "") -> str:
    """Remove a target's secrets from text (an error message): the URL itself and every piece
    of it that its shown form `display` does not contain."""
    text = text.replace(url, "(the target URL)")
    for piece in sorted(set(re.split(r"[/:@?&=#,]+", url)), key=len, reverse=True):
        if len(piece) >= 4 and piece.lower() not in _SCHEMES_SHOWN and piece not in display:
            text = text.replace(piece, "****")
    return text


_SCHEMES_SHOWN = {"http", "https", "json", "jsons", "mailto", "none"}


def _asset() -> apprise.AppriseAsset:
    return apprise.AppriseAsset(app_id="Backupsite", app_desc="Backupsite", app_url=settings.SITE_URL)


def deliver(url: str, subject: str, body: str, *, level: str = "info") -> None:
    """Send one message to `url`; SendFailed says why it did not get through. `level` (info,
    success, warning, failure) lets chat services colour the message."""
    address = email_address(url)
    if address is not None:
        _send_mail(address, subject, body)
    else:
        _send_apprise(url, subject, body, level)


_LEVELS = {
    "info": apprise.NotifyType.INFO,
    "success": apprise.NotifyType.SUCCESS,
    "warning": apprise.NotifyType.WARNING,
    "failure": apprise.NotifyType.FAILURE,
}


def _send_mail(address: str, subject: str, body: str) -> None:
    message = EmailMessage(
        subject=" ".join(subject.split()), body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[address]
    )
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused:
        raise SendFailed(f"the mail server refused the address {address}") from None
    except smtplib.SMTPAuthenticationError:
        raise SendFailed("the mail server refused EMAIL_HOST_USER / EMAIL_HOST_PASSWORD") from None
    except (smtplib.SMTPException, OSError) as exc:
        where = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
        raise SendFailed(f"could not send mail through {where}: {exc}") from None


def _send_apprise(url: str, subject: str, body: str, level: str) -> None:
    sender = apprise.Apprise(asset=_asset())
    with apprise.LogCapture(level=logging.WARNING) as log:
        if not sender.add(url):
            raise SendFailed("Apprise cannot read this URL any more (edit the target)")
        ok = sender.notify(
            title=subject,
            body=body,
            body_format=apprise.NotifyFormat.TEXT,
            notify_type=_LEVELS.get(level, apprise.NotifyType.INFO),
        )
    if not ok:
        lines = [line.split(" - ", 2)[-1] for line in log.getvalue().splitlines() if " - " in line]
        display = redact(url, sender[0].url(privacy=True))
        reason = _scrub("; ".join(lines[-3:]), url, display) or "the service did not accept the message"
        raise SendFailed(reason)

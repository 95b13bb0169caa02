"""Template context every page gets."""

from django.http import HttpRequest

# The first path segment of a page and the navigation entry it belongs to.
_SECTIONS = {
    "": "dashboard",
    "dashboard": "dashboard",
    "destinations": "destinations",
    "accounts": "accounts",
    "jobs": "jobs",
    "backups": "backups",
    "clients": "clients",
    "notifications": "notifications",
    "queue": "queue",
    "mine": "mine",
    "downloads": "mine",
    "password": "password",
    "account": "two-factor",
}


def navigation(request: HttpRequest) -> dict[str, str]:
    """`nav_section`: which navigation entry the page is under, so the menu can mark it.

    Derived from the URL rather than passed by every view, so no page forgets it. A client's
    account and backup pages live under /accounts/ and /backups/ too, but their menu has
    only "My backups" for all of that."""
    segment = request.path.strip("/").split("/", 1)[0]
    section = _SECTIONS.get(segment, "")
    user = getattr(request, "user", None)
    if section in ("accounts", "backups") and not (user is not None and user.is_staff):
        section = "mine"
    return {"nav_section": section}

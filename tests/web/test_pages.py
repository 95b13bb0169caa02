"""What every page has: the navigation (also on error pages) with the current section marked,
a favicon that exists, and icons that do not depend on the font."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders

from tests.support.pages import showcase

pytestmark = pytest.mark.django_db


def current_sections(html: str) -> list[str]:
    nav = html[html.index("<nav") : html.index("</nav>")]
    return re.findall(r'<a class="nav-link" aria-current="page" href="[^"]*">([^<]+)</a>', nav)


@pytest.mark.parametrize(
    ("url", "section"),
    [
        ("/destinations/", "Destinations"),
        ("/destinations/{destination}/", "Destinations"),
        ("/accounts/", "Accounts"),
        ("/accounts/{account}/", "Accounts"),
        ("/jobs/{job}/", "Backup jobs"),
        ("/backups/{snapshot}/files/", "Backups"),
        ("/clients/new/", "Clients"),
        ("/queue/{item}/", "Queue"),
        ("/notifications/", "Notifications"),
    ],
)
def test_the_navigation_marks_the_section_an_admin_is_in(client, url, section):
    world = showcase()
    client.force_login(world.admin)
    ids = {
        "destination": world.destination.pk,
        "account": world.account.pk,
        "job": world.job.pk,
        "snapshot": world.snapshot.pk,
        "item": world.item.pk,
    }
    html = client.get(url.format(**ids)).content.decode()
    assert current_sections(html) == [section]


def test_a_client_sees_my_backups_marked_on_their_account_and_backup_pages(client):
    world = showcase()
    client.force_login(world.client)
    for url in ("/mine/", f"/accounts/{world.account.pk}/", f"/backups/{world.snapshot.pk}/"):
        assert current_sections(client.get(url).content.decode()) == ["My backups"], url
    assert current_sections(client.get("/queue/").content.decode()) == ["Queue"]


@pytest.mark.parametrize("who", ["admin", "client"])
def test_not_found_keeps_the_navigation(client, who):
    world = showcase()
    client.force_login(world.admin if who == "admin" else world.client)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1" in html
    assert "Not found" in html
    assert ("Destinations" in html) == (who == "admin")
    assert "Log out" in html
    assert current_sections(html) == []


def test_every_page_links_a_favicon_that_exists(client):
    html = client.get("/login/").content.decode()
    href = re.search(r'<link rel="icon" href="/static/([^"]+)"', html).group(1)
    assert finders.find(href), href  # served in the browser tests: tests/browser/test_browser_every_page.py


def test_folders_are_drawn_with_an_svg_not_a_glyph(client):
    world = showcase()
    client.force_login(world.client)
    html = client.get(f"/backups/{world.snapshot.pk}/files/").content.decode()
    row = re.search(r'<tr data-path="public_html" data-type="dir">(.*?)</tr>', html, re.S).group(1)
    assert '<svg class="icon"' in row
    assert "\N{FILE FOLDER}" not in html


def test_the_server_error_and_expired_form_pages_are_the_panels_own(rf):
    """Django renders these without the request's context (no user, so no menu), but they are
    still panel pages: the stylesheet, the favicon, a way back, and no inline code."""
    from django.test import Client
    from django.views.defaults import server_error

    from tests.web.test_csp import inline_code

    error = server_error(rf.get("/"))
    html = error.content.decode()
    assert error.status_code == 500
    assert "Something went wrong" in html
    assert 'href="/static/backupsite/site.css"' in html
    assert 'rel="icon"' in html
    assert inline_code(html) == []

    expired = Client(enforce_csrf_checks=True).post("/login/", {"username": "x", "password": "y"})
    assert expired.status_code == 403
    assert "This form has expired" in expired.content.decode()
    assert inline_code(expired.content.decode()) == []

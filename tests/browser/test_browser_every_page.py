"""Every page in Chromium, as an admin and as a client, on a desktop and on a 390 px phone:
no axe-core violation of level serious or critical, no Content-Security-Policy violation or
script error, no asset that fails to load, the whole navbar on the phone. The same walk writes
a screenshot of every page into BACKUPSITE_SCREENSHOTS (default: screenshots/ in the data
folder)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.conf import settings

from jobs.models import QueueItem
from tests.support.fixtures_browser import login
from tests.support.pages import ADMIN, CLIENT, page_urls, showcase

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
BLOCKING = ("serious", "critical")

# Recorded in every page before its own scripts run (Playwright's init scripts are not
# subject to the page's policy).
WATCH_POLICY = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def screenshot_dir() -> Path:
    folder = Path(os.environ.get("BACKUPSITE_SCREENSHOTS") or Path(settings.DATA_DIR) / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def slug(url: str) -> str:
    url = re.sub(r"/login/set-password/[^/]+/[^/]+/", "/login/set-password/", url)  # no token in names
    return re.sub(r"[^a-z0-9]+", "-", url.lower()).strip("-") or "home"


class PageWatch:
    """What went wrong on a page while it loaded: console errors, script errors, failed requests."""

    def __init__(self, page) -> None:
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("response", self._response)
        page.on("requestfailed", self._failed)

    def _console(self, message) -> None:
        if message.type == "error" and "404 (Not Found)" not in message.text:
            self.problems.append(f"console: {message.text}")

    def _failed(self, request) -> None:
        # Leaving a page aborts its pending htmx poll: that is the browser, not a missing asset.
        if "ERR_ABORTED" not in (request.failure or ""):
            self.problems.append(f"failed: {request.url} ({request.failure})")

    def _response(self, response) -> None:
        if response.status >= 400 and response.request.resource_type != "document":
            self.problems.append(f"{response.status} for {response.url}")

    def take(self) -> list[str]:
        found, self.problems = self.problems, []
        return found


def blocking_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}"
        for v in results.response["violations"]
        if v["impact"] in BLOCKING
    ]


def assets_load(page, live_server) -> list[str]:
    """Every stylesheet, script, icon and image the page names answers 200 (a browser that
    does not fetch favicons, like headless Chromium, would not show a 404 for it)."""
    urls = page.eval_on_selector_all(
        "link[href], script[src], img[src]",
        "els => els.map(e => e.href || e.src)",
    )
    missing = []
    for url in sorted(set(urls)):
        if url.startswith(live_server.url):
            status = page.request.get(url).status
            if status != 200:
                missing.append(f"{status} for {url}")
    return missing


def navbar_fits(page) -> list[str]:
    """On the phone: the navbar's every control is inside the viewport, nothing scrolls sideways."""
    problems = []
    width = page.viewport_size["width"]
    if page.evaluate("document.documentElement.scrollWidth") > width:
        problems.append(
            f"the page scrolls sideways: {page.evaluate('document.documentElement.scrollWidth')} px"
        )
    for control in page.locator("nav.navbar a, nav.navbar button").all():
        box = control.bounding_box()
        if box is None or not control.is_visible() or box["x"] < 0 or box["x"] + box["width"] > width + 0.5:
            problems.append(f"{control.inner_text()!r} is not fully visible: {box}")
    return problems


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("who", ["admin", "client"])
def test_every_page_is_accessible_loads_its_assets_and_keeps_to_the_policy(
    browser, live_server, who, viewport
):
    """
    GIVEN one object of every kind, and the user logged in
    WHEN the browser opens every page the user can open
    THEN axe-core finds nothing serious or critical, the policy refused nothing, no asset is
         missing, the phone shows the whole navbar; a screenshot of every page is written
    """
    world = showcase()
    user = ADMIN if who == "admin" else CLIENT
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    context.set_default_timeout(15000)
    context.add_init_script(WATCH_POLICY)
    page = context.new_page()
    watch = PageWatch(page)
    folder = screenshot_dir()
    problems: dict[str, list[str]] = {}
    try:
        pages = ["/login/", "/login/forgot/"]
        for url in pages:
            page.goto(f"{live_server.url}{url}")
            page.screenshot(path=folder / f"anonymous-{viewport}-{slug(url)}.png", full_page=True)
            problems[f"anonymous {url}"] = blocking_violations(page) + watch.take()
        login(page, live_server, *user)
        assert page.locator("button", has_text="Log out").is_visible()
        urls = page_urls(world, staff=who == "admin")
        for url in urls:
            response = page.goto(f"{live_server.url}{url}")
            assert response.status == (404 if url == "/no-such-page/" else 200), url
            page.wait_for_load_state("networkidle")
            found = blocking_violations(page) + assets_load(page, live_server)
            found += page.evaluate("window.__cspViolations") + watch.take()
            if viewport == "phone":
                found += navbar_fits(page)
            problems[url] = found
            page.screenshot(path=folder / f"{who}-{viewport}-{slug(url)}.png", full_page=True)
        # The restore confirmation is the answer to a POST: reach it the way a user does.
        page.goto(f"{live_server.url}/backups/{world.snapshot.pk}/")
        page.locator('input[name="parts"]').first.check()
        page.click("#restore-selected")
        page.wait_for_load_state("networkidle")
        assert "Restore from the backup" in page.inner_text("h1")
        found = blocking_violations(page) + assets_load(page, live_server)
        found += page.evaluate("window.__cspViolations") + watch.take()
        problems["restore confirmation"] = found + (navbar_fits(page) if viewport == "phone" else [])
        page.screenshot(path=folder / f"{who}-{viewport}-restore-confirmation.png", full_page=True)
    finally:
        context.close()
    assert {url: found for url, found in problems.items() if found} == {}
    assert len(problems) >= (27 if who == "admin" else 14)


def test_htmx_polls_a_progress_bar_under_the_policy(page, live_server):
    """
    GIVEN a running backup at 42 %
    WHEN its queue page is open and the worker's progress moves to 77 %
    THEN htmx fetches the new state and the bar is drawn at the new width (set by site.js:
         the policy refuses style attributes), with no violation on the way
    """
    world = showcase()
    page.context.add_init_script(WATCH_POLICY)
    login(page, live_server, *ADMIN)
    page.goto(f"{live_server.url}/queue/{world.item.pk}/")
    bar = page.locator("#queue-item-body .progress-bar")
    assert bar.evaluate("el => el.style.width") == "42%"
    QueueItem.objects.filter(pk=world.item.pk).update(progress=77)
    page.wait_for_selector('#queue-item-body .progress[data-progress="77"]', timeout=10000)
    assert bar.evaluate("el => el.style.width") == "77%"
    track = page.locator("#queue-item-body .progress").bounding_box()
    drawn = bar.bounding_box()
    assert 0.7 < drawn["width"] / track["width"] < 0.84
    assert page.evaluate("window.__cspViolations") == []


def test_the_panel_is_usable_from_the_keyboard_alone(page, live_server):
    """The login form takes the keyboard (the username has the focus, Tab goes on, Enter logs
    in); on a panel page the first Tab shows a skip link; the focused control has an outline."""
    showcase()
    page.goto(f"{live_server.url}/login/")
    assert page.evaluate("document.activeElement.id") == "id_username"
    page.keyboard.type(ADMIN[0])
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "id_password"
    page.keyboard.type(ADMIN[1])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator('nav a[aria-current="page"]').inner_text() == "Dashboard"

    page.keyboard.press("Tab")
    skip = page.locator("a", has_text="Skip to the content")
    assert skip.evaluate("el => el === document.activeElement")
    assert skip.is_visible()
    assert skip.evaluate("el => getComputedStyle(el).outlineStyle") != "none"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.closest('main') !== null")
    assert focused, "after the skip link, Tab goes on inside the page's content"

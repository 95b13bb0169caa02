"""Playwright driving Debian's Chromium (no browser download)."""

import os
import shutil

import pytest

from tests.support.peers import missing_peer

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.path.exists(candidate):
            return candidate
    missing_peer("Chromium is not installed (apt-get install chromium)")


@pytest.fixture
def browser():
    """Function-scoped on purpose: Playwright's sync API keeps an event loop running in the main
    thread while it is started, and the FTP seam's connections need that thread's loop free."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_peer("the playwright package is not installed")
    executable = chromium_path()
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
    except Exception:
        playwright.stop()
        raise
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15000)
    page = context.new_page()
    yield page
    context.close()


def login(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def off_the_browser_thread(function, *args, **kwargs):
    """Run `function` in another thread and return its result.

    Playwright's sync API keeps an event loop running in the test's thread, and the FTP seam
    drives its own loop with run_until_complete, which cannot run inside a running loop."""
    import concurrent.futures

    from django.db import connection

    def call():
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()

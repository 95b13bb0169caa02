"""An admin in Chromium adds a notification target and "Send test" reaches a real SMTP server."""

from __future__ import annotations

import pytest

from jobs.models import NotificationTarget
from tests.support.fixtures_browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_target_created_on_the_page_gets_the_test_message(
    page, live_server, django_user_model, smtp_server
):
    """
    GIVEN an admin on the Notifications page and a real SMTP server behind the mail settings
    WHEN they add an email target for failed backups and press its "Send test"
    THEN the SMTP server receives the test message for that address and the page says so
    """
    django_user_model.objects.create_user("nt-browser", password="nt-browser-pw-1", is_staff=True)
    login(page, live_server, "nt-browser", "nt-browser-pw-1")
    page.click("nav >> text=Notifications")
    page.click("text=Add notification target")
    page.fill("#id_name", "on-call")
    page.fill("#id_url", "mailto:oncall@example.com")
    page.check("input[name=events][value=backup_failed]")
    page.check("input[name=events][value=destination_unreachable]")
    page.click("main button[type=submit]")

    row = page.locator('[data-target="on-call"]')
    assert "oncall@example.com" in row.inner_text()
    assert "backup_failed, destination_unreachable" in row.inner_text()
    row.locator("text=Send test").click()
    page.wait_for_load_state("networkidle")

    assert "Test message sent to on-call." in page.inner_text("main")
    mails = smtp_server.wait_for(1)
    assert len(mails) == 1
    assert mails[0]["To"] == "oncall@example.com"
    assert "on-call" in mails[0]["Subject"]
    target = NotificationTarget.objects.get(name="on-call")
    assert target.last_sent is not None
    assert "sent" in page.locator('[data-target="on-call"]').inner_text()
    assert "Test message for on-call" in page.inner_text("main")  # the recent messages

"""Onboarding in Chromium: the admin adds a client with an email; the client opens the link in
the mail that reached a real SMTP server, chooses a password and logs in."""

from __future__ import annotations

import re

import pytest

from jobs.models import Account
from tests.support.fixtures_browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def body_of(message) -> str:
    """The plain-text body of a received mail."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def test_a_client_invited_by_email_sets_a_password_through_the_link_and_logs_in(
    browser, live_server, django_user_model, smtp_server
):
    django_user_model.objects.create_superuser("inviter", password="inviter-pw-2026")
    Account.objects.create(username="a11ysite", home="/home/a11ysite")
    admin = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    login(admin, live_server, "inviter", "inviter-pw-2026")
    admin.goto(f"{live_server.url}/clients/")
    admin.click("text=Add client")
    admin.fill("#id_username", "newclient")
    admin.fill("#id_email", "newclient@example.com")
    assert admin.is_checked("#id_invite"), "an invitation is the default for a new client"
    admin.check("text=a11ysite")
    admin.click("button:has-text('Save')")
    assert "Invitation sent to newclient@example.com" in admin.inner_text("main")
    assert "not chosen yet" in admin.inner_text('tr[data-client="newclient"]')

    [mail] = smtp_server.wait_for(1)
    assert smtp_server.envelopes[0][1] == ["newclient@example.com"]
    link = re.search(r"http://\S+/login/set-password/\S+/", body_of(mail)).group(0)
    assert link.startswith(live_server.url), "the link points at the panel as the admin reached it"

    phone = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    phone.goto(link)
    assert phone.inner_text("#reset-username") == "newclient"
    phone.fill("#id_new_password1", "Chosen-by-me-8642")
    phone.fill("#id_new_password2", "Chosen-by-me-8642")
    phone.click("button:has-text('Set my password')")
    phone.wait_for_selector("text=Your password is set")
    phone.click("text=Log in")
    phone.fill("#id_username", "newclient")
    phone.fill("#id_password", "Chosen-by-me-8642")
    phone.click("button[type=submit]")
    phone.wait_for_url(f"{live_server.url}/mine/")
    assert "a11ysite" in phone.inner_text("main")
    assert phone.locator("button", has_text="Log out").is_visible()

    phone.context.clear_cookies()
    phone.goto(link)
    assert "This link does not work any more" in phone.inner_text("main")
    admin.reload()
    assert "set" in admin.inner_text('tr[data-client="newclient"] td:nth-child(3)')


def test_forgot_password_on_the_login_page_mails_a_link(browser, live_server, django_user_model, smtp_server):
    django_user_model.objects.create_user("forgetful", email="forgetful@example.com", password="old-pw-13579")
    page = browser.new_context().new_page()
    page.goto(f"{live_server.url}/login/")
    page.click("text=Forgot your password?")
    page.fill("#id_email", "forgetful@example.com")
    page.click("button:has-text('Send me a link')")
    assert "If a login has this email address" in page.inner_text("#reset-sent")
    [mail] = smtp_server.wait_for(1)
    link = re.search(r"http://\S+/login/set-password/\S+/", body_of(mail)).group(0)
    page.goto(link)
    page.fill("#id_new_password1", "New-and-better-2468")
    page.fill("#id_new_password2", "New-and-better-2468")
    page.click("button:has-text('Set my password')")
    page.wait_for_selector("text=Your password is set")
    login(page, live_server, "forgetful", "New-and-better-2468")
    assert page.url.endswith("/mine/")

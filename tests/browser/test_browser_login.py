"""Logins in Chromium: a locked-out login shows the lockout message; two-factor asks for the code."""

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.support.fixtures_browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_locked_out_login_shows_the_lockout_message(page, live_server, django_user_model):
    """GIVEN 10 wrong passwords typed into the login page WHEN the right one follows THEN the
    page says the login is locked and how long for, and the user is not logged in."""
    django_user_model.objects.create_user("alice", password="alice-pw-1234")
    for _ in range(9):
        login(page, live_server, "alice", "not-the-password")
        assert "didn't match" in page.inner_text("main")
    login(page, live_server, "alice", "not-the-password")
    login(page, live_server, "alice", "alice-pw-1234")
    message = page.inner_text("#lockout-message")
    assert "Too many failed logins for this account or address." in message
    assert "Try again in 15 minutes or ask an administrator to unlock it." in message
    page.goto(f"{live_server.url}/mine/")
    assert "/login/" in page.url


def test_an_admin_turns_two_factor_on_and_then_logs_in_with_a_code(page, live_server, django_user_model):
    django_user_model.objects.create_superuser("root", password="root-pw-1234", email="")
    login(page, live_server, "root", "root-pw-1234")
    page.click("text=Two-factor")
    assert page.locator("#totp-qr svg").count() == 1
    device = TOTPDevice.objects.get(user__username="root")
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    page.fill("#id_code", f"{totp.token():06d}")
    page.click("main button[type=submit]")
    assert "Two-factor login is on" in page.inner_text("main")
    page.click("text=Log out")
    login(page, live_server, "root", "root-pw-1234")
    assert page.url.endswith("/login/code/")
    totp.time += device.step  # the next code: the one used to confirm is spent
    page.fill("#id_code", f"{totp.token():06d}")
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.url == f"{live_server.url}/"  # the dashboard, the admin's home page

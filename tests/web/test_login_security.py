"""Login throttling (django-axes: per username and per address, a lockout page, admin unlock)
and two-factor login with TOTP codes (django-otp), on the panel login and /admin/."""

import time

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from django_otp.oath import TOTP, totp
from django_otp.plugins.otp_totp.models import TOTPDevice

LOCKOUT = "Too many failed logins for this account or address."

pytestmark = pytest.mark.django_db


@pytest.fixture
def users(django_user_model):
    return {
        "alice": django_user_model.objects.create_user("alice", password="alice-pw-1234"),
        "bob": django_user_model.objects.create_user("bob", password="bob-pw-1234"),
        "root": django_user_model.objects.create_superuser("root", password="root-pw-1234", email=""),
    }


def log_in(client, username, password, address="10.0.0.1", **extra):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address, **extra
    )


def logged_in_as(client):
    return get_user_model().objects.filter(pk=client.session.get("_auth_user_id")).first()


def fail(client, username, times, address="10.0.0.1", **extra):
    return [log_in(client, username, "wrong-password", address, **extra).status_code for _ in range(times)]


# --- throttling ---------------------------------------------------------------------------


def test_ten_wrong_passwords_lock_the_login_and_the_right_one_is_refused_with_the_message(client, users):
    """GIVEN 9 wrong passwords (each answered by the login form) WHEN the 10th is wrong THEN
    the login locks: the right password is refused with the lockout page, nobody logged in."""
    assert fail(client, "alice", 9) == [200] * 9
    tenth = log_in(client, "alice", "wrong-password")
    assert tenth.status_code == 429
    right = log_in(client, "alice", "alice-pw-1234")
    assert right.status_code == 429
    body = right.content.decode()
    assert LOCKOUT in body
    assert "Try again in 15 minutes or ask an administrator to unlock it." in body
    assert logged_in_as(client) is None


def test_failures_count_per_username_and_per_address_separately(client, users):
    """GIVEN 10 failures for alice from 10.0.0.1 THEN bob's right password from that address is
    refused (the address is locked), bob logs in from elsewhere, and alice is refused from
    elsewhere too (her username is locked)."""
    fail(client, "alice", 10)
    assert LOCKOUT in log_in(client, "bob", "bob-pw-1234", "10.0.0.1").content.decode()
    assert log_in(client, "alice", "alice-pw-1234", "10.0.0.2").status_code == 429
    client.logout()
    assert log_in(client, "bob", "bob-pw-1234", "10.0.0.2").status_code == 302
    assert logged_in_as(client) == users["bob"]


def test_a_successful_login_between_guesses_does_not_reset_the_address(client, users):
    """GIVEN 9 guesses at other accounts from one address WHEN bob logs in to his own account
    from there (and out again) THEN one more guess locks the address all the same."""
    for n in range(9):
        log_in(client, f"guess{n}", "wrong", "10.0.0.5")
    assert log_in(client, "bob", "bob-pw-1234", "10.0.0.5").status_code == 302
    client.logout()
    assert log_in(client, "guess9", "wrong", "10.0.0.5").status_code == 429
    assert log_in(client, "bob", "bob-pw-1234", "10.0.0.5").status_code == 429


def test_a_client_cannot_choose_its_address_with_x_forwarded_for(client, users):
    """GIVEN no proxy WHEN one connection sends 10 wrong passwords, each with another made-up
    X-Forwarded-For THEN they all count against its real address."""
    for n in range(10):
        log_in(client, f"nobody{n}", "wrong", "10.0.0.7", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert (
        log_in(client, "bob", "bob-pw-1234", "10.0.0.7", HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429
    )


def test_behind_the_proxy_the_address_is_the_hop_the_proxy_added(client, users, settings):
    """GIVEN BEHIND_TLS_PROXY (the proxy connects from 127.0.0.1 and appends the client's
    address) WHEN one client fails 10 times, prepending made-up hops THEN its address locks
    and another client behind the same proxy still logs in."""
    settings.BEHIND_TLS_PROXY = True
    for n in range(10):
        log_in(client, f"nobody{n}", "wrong", "127.0.0.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.5")
    locked = log_in(client, "bob", "bob-pw-1234", "127.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.5")
    assert locked.status_code == 429
    other = log_in(client, "bob", "bob-pw-1234", "127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.6")
    assert other.status_code == 302


def test_wrong_old_passwords_on_the_password_page_count_toward_the_lockout(client, users):
    """A session left open is no way around the throttling: 10 wrong old passwords lock."""
    client.force_login(users["alice"])
    change = {"new_password1": "a-new-pw-5678!", "new_password2": "a-new-pw-5678!"}
    for _ in range(9):
        answer = client.post(
            reverse("jobs:password"), {"old_password": "wrong", **change}, REMOTE_ADDR="10.0.0.8"
        )
        assert answer.status_code == 200
    assert (
        client.post(
            reverse("jobs:password"), {"old_password": "wrong", **change}, REMOTE_ADDR="10.0.0.8"
        ).status_code
        == 429
    )
    right = client.post(
        reverse("jobs:password"), {"old_password": "alice-pw-1234", **change}, REMOTE_ADDR="10.0.0.8"
    )
    assert right.status_code == 429
    users["alice"].refresh_from_db()
    assert users["alice"].check_password("alice-pw-1234")


def test_the_admin_sites_password_change_is_the_throttled_panel_page(client, users):
    """GIVEN an admin session left open WHEN someone guesses the old password on /admin/'s own
    password change THEN it is the panel's page (counted, locked): the admin site's form,
    which checks the old password unthrottled, is not served."""
    client.force_login(users["root"])
    assert client.get("/admin/password_change/")["Location"] == reverse("jobs:password")
    change = {"new_password1": "a-new-pw-5678!", "new_password2": "a-new-pw-5678!"}
    for _ in range(10):
        client.post("/admin/password_change/", {"old_password": "wrong", **change}, REMOTE_ADDR="10.0.0.8")
    client.post("/admin/password_change/", {"old_password": "root-pw-1234", **change}, REMOTE_ADDR="10.0.0.8")
    users["root"].refresh_from_db()
    assert users["root"].check_password("root-pw-1234")


def test_an_admin_unlocks_a_username_with_the_command(client, users):
    fail(client, "alice", 10, "10.0.0.3")
    call_command("axes_reset_username", "alice")
    assert log_in(client, "alice", "alice-pw-1234", "10.0.0.4").status_code == 302


def test_an_admin_unlocks_from_the_admin_site(client, users):
    """GIVEN alice locked WHEN an admin deletes her access attempts in the admin THEN she logs in."""
    fail(client, "alice", 10, "10.0.0.3")
    admin = type(client)()
    admin.force_login(users["root"])
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert "alice" in listing.content.decode()
    ids = [str(pk) for pk in AccessAttempt.objects.values_list("pk", flat=True)]
    done = admin.post(
        "/admin/axes/accessattempt/", {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    )
    assert done.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert log_in(client, "alice", "alice-pw-1234", "10.0.0.3").status_code == 302


def test_the_admin_site_logs_in_through_the_throttled_panel_login(client, users):
    """/admin/login/ is the panel's login: its own form (which would skip the code step) is
    not served, and a locked username stays locked there."""
    answer = client.get("/admin/login/?next=/admin/")
    assert answer.status_code == 302
    assert answer["Location"] == reverse("login") + "?next=/admin/"
    fail(client, "root", 10)
    client.post("/admin/login/?next=/admin/", {"username": "root", "password": "root-pw-1234"}, follow=True)
    assert logged_in_as(client) is None
    assert log_in(client, "root", "root-pw-1234", "10.0.0.9").status_code == 429


# --- two-factor login ---------------------------------------------------------------------


def code_for(device, offset_steps=0):
    """The code an authenticator app shows `offset_steps` periods from now."""
    if offset_steps == 0:
        return (
            f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):0{device.digits}d}"
        )
    at = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    at.time = time.time() + offset_steps * device.step
    return f"{at.token():0{device.digits}d}"


def turn_on(client, user):
    """Through the page, as the admin would: QR code and secret shown, confirmed by a code."""
    client.force_login(user)
    page = client.get(reverse("two-factor"))
    body = page.content.decode()
    assert "<svg" in body
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    secret = "".join(body.split('id="totp-secret">')[1].split("<")[0].split())
    import base64

    assert base64.b32decode(secret + "=" * (-len(secret) % 8)) == device.bin_key
    done = client.post(reverse("two-factor"), {"code": code_for(device)})
    assert done.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    client.logout()
    return device


def test_two_factor_is_on_only_after_a_first_code_confirms_it(client, users):
    client.force_login(users["root"])
    client.get(reverse("two-factor"))
    device = TOTPDevice.objects.get(user=users["root"])
    wrong = client.post(
        reverse("two-factor"), {"code": "000000" if code_for(device) != "000000" else "111111"}
    )
    assert wrong.status_code == 200
    assert "does not match" in wrong.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    client.logout()
    assert log_in(client, "root", "root-pw-1234").status_code == 302
    assert logged_in_as(client) == users["root"]  # no code asked: it is not on


def test_with_two_factor_on_the_login_asks_for_the_code_after_the_password(client, users):
    device = turn_on(client, users["root"])
    answer = log_in(client, "root", "root-pw-1234")
    assert answer.status_code == 302
    assert answer["Location"] == reverse("login-code")
    assert logged_in_as(client) is None  # the password alone did not log in
    assert client.get("/destinations/").status_code == 302
    done = client.post(reverse("login-code"), {"code": code_for(device, 1)}, REMOTE_ADDR="10.0.0.1")
    assert done.status_code == 302
    assert logged_in_as(client) == users["root"]
    assert client.get("/destinations/").status_code == 200
    assert client.get("/admin/").status_code == 200


def test_the_password_step_gives_a_new_session_key_so_a_planted_one_cannot_try_codes(client, users):
    """GIVEN a session key someone else knows (a client's own session, planted in the admin's
    browser) WHEN the admin passes the password step THEN the session gets a new key, and the
    old one is not at the code step: the password cannot be skipped."""
    from django.test import Client

    device = turn_on(client, users["root"])
    client.force_login(users["alice"])
    planted = client.cookies["sessionid"].value
    log_in(client, "root", "root-pw-1234")
    assert client.cookies["sessionid"].value != planted
    attacker = Client()
    attacker.cookies["sessionid"] = planted
    answer = attacker.post(reverse("login-code"), {"code": code_for(device, 1)}, REMOTE_ADDR="10.0.0.2")
    assert answer.status_code == 302
    assert answer["Location"] == reverse("login")
    assert attacker.session.get("_auth_user_id") is None


def test_a_wrong_code_refuses_and_counts_toward_the_lockout(client, users):
    device = turn_on(client, users["root"])
    log_in(client, "root", "root-pw-1234")
    right = code_for(device, 1)
    wrong = f"{(int(right) + 1) % 1000000:06d}"
    refused = client.post(reverse("login-code"), {"code": wrong}, REMOTE_ADDR="10.0.0.1")
    assert refused.status_code == 200
    assert "That code is not right" in refused.content.decode()
    assert logged_in_as(client) is None
    assert AccessAttempt.objects.get(username="root").failures_since_start == 1
    for _ in range(9):
        last = client.post(reverse("login-code"), {"code": wrong}, REMOTE_ADDR="10.0.0.1")
    assert last.status_code == 429
    assert LOCKOUT in last.content.decode()
    assert client.post(reverse("login-code"), {"code": right}, REMOTE_ADDR="10.0.0.1").status_code == 429
    assert logged_in_as(client) is None


def test_a_session_that_gave_no_code_is_refused_by_the_panel_and_the_admin_site(client, users):
    """GIVEN two-factor on WHEN a session is logged in without a code (any other way in) THEN
    the admin site and the panel log it out and send it to the login."""
    turn_on(client, users["root"])
    client.force_login(users["root"])
    admin = client.get("/admin/")
    assert admin.status_code == 302
    assert admin["Location"].startswith(reverse("login"))
    assert logged_in_as(client) is None
    client.force_login(users["root"])
    assert client.get("/destinations/").status_code == 302


def test_turning_two_factor_off_asks_for_the_password_or_a_code(client, users):
    device = turn_on(client, users["root"])
    log_in(client, "root", "root-pw-1234")
    client.post(reverse("login-code"), {"code": code_for(device, 1)})
    refused = client.post(reverse("two-factor"), {"password": "not-it"})
    assert "not right" in refused.content.decode()
    assert TOTPDevice.objects.filter(user=users["root"], confirmed=True).exists()
    done = client.post(reverse("two-factor"), {"password": "root-pw-1234"})
    assert done.status_code == 302
    assert not TOTPDevice.objects.filter(user=users["root"]).exists()
    client.logout()
    assert log_in(client, "root", "root-pw-1234").status_code == 302
    assert logged_in_as(client) == users["root"]


def test_the_api_token_of_an_admin_with_two_factor_still_works_and_a_session_without_code_does_not(
    client, users
):
    """Token auth takes no password (it is its own secret); a session cookie that gave no code
    is logged out on the API too."""
    from rest_framework.authtoken.models import Token

    turn_on(client, users["root"])
    token = Token.objects.create(user=users["root"])
    assert client.get("/api/v1/destinations/", HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 200
    client.force_login(users["root"])
    assert client.get("/api/v1/destinations/").status_code in (401, 403)
    assert logged_in_as(client) is None


def test_an_admin_who_lost_the_app_gets_two_factor_turned_off_on_the_server(client, users):
    turn_on(client, users["root"])
    call_command("twofactor_off", "root")
    assert log_in(client, "root", "root-pw-1234").status_code == 302
    assert logged_in_as(client) == users["root"]

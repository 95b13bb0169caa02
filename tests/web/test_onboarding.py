"""Client onboarding: the admin creates a client with an email, the client gets a link to choose
their password; "Forgot password" sends such a link without telling who has a login.

The mail goes through Django's SMTP backend to a real SMTP server in the test (aiosmtpd)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.support import REPO
from tests.support.peers import free_port

pytestmark = pytest.mark.django_db

ROOT = REPO
LINK = re.compile(r"http://testserver(/login/set-password/[^/\s]+/[^/\s]+/)")


def body_of(message) -> str:
    """The plain-text body of a received mail."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def set_password_through(client, mail_body: str, password: str):
    """Follow the link in a mail and choose `password`; answers the last response."""
    found = LINK.search(mail_body)
    assert found, mail_body
    path = found.group(1)
    form = client.get(path, follow=True)
    assert form.status_code == 200
    assert b"Choose your password" in form.content
    return client.post(
        form.redirect_chain[-1][0], {"new_password1": password, "new_password2": password}, follow=True
    )


def test_an_invited_client_chooses_a_password_through_the_link_and_logs_in(admin_client, smtp_server, client):
    """
    GIVEN an admin on the clients page
    WHEN they add a client with an email and no password (the invitation is the default)
    THEN the client has no usable password, one mail reaches the address through SMTP with a
         set-password link; the link sets the password once, and the client logs in with it
    """
    response = admin_client.post(
        "/clients/new/", {"username": "carol", "email": "carol@example.com", "invite": "on"}, follow=True
    )
    assert response.status_code == 200
    assert "Invitation sent to carol@example.com" in response.content.decode()
    carol = get_user_model().objects.get(username="carol")
    assert not carol.has_usable_password()
    assert not carol.is_staff
    [mail] = smtp_server.wait_for(1)
    assert mail["To"] == "carol@example.com"
    assert mail["From"] == "backupsite@panel.example"
    body = body_of(mail)
    assert "Your login: carol" in body
    assert "http://testserver/login/" in body

    done = set_password_through(client, body, "a-Long-new-pw-4711")
    assert b"Your password is set" in done.content
    assert client.login(request=HttpRequest(), username="carol", password="a-Long-new-pw-4711")
    client.logout()
    again = client.get(LINK.search(body).group(1), follow=True)
    assert again.status_code == 404
    assert b"does not work any more" in again.content, "a used link must not work twice"


def test_an_invitation_needs_an_email_and_a_new_client_needs_a_password_or_an_invitation(
    admin_client, mailoutbox
):
    no_email = admin_client.post("/clients/new/", {"username": "dave", "email": "", "invite": "on"})
    assert "An invitation needs the client&#x27;s email address." in no_email.content.decode()
    neither = admin_client.post("/clients/new/", {"username": "dave", "email": "dave@example.com"})
    assert "Choose a password for the new client, or send an invitation." in neither.content.decode()
    assert not get_user_model().objects.filter(username="dave").exists()
    assert mailoutbox == []


def test_the_admin_resends_an_invitation_and_editing_a_client_keeps_their_password(
    admin_client, mailoutbox, client
):
    erin = get_user_model().objects.create_user("erin", email="erin@example.com", password="erin-pw-98765")
    page = admin_client.get(f"/clients/{erin.pk}/").content.decode()
    assert "Has chosen a password." in page
    assert "Send a password link" in page
    admin_client.post(
        f"/clients/{erin.pk}/", {"username": "erin", "email": "erin@example.com", "password": ""}
    )
    assert client.login(request=HttpRequest(), username="erin", password="erin-pw-98765"), (
        "a blank password field keeps the password"
    )
    client.logout()

    answer = admin_client.post(f"/clients/{erin.pk}/invite/", follow=True)
    assert "Invitation sent to erin@example.com" in answer.content.decode()
    admin_client.post(f"/clients/{erin.pk}/invite/")
    assert [m.to for m in mailoutbox] == [["erin@example.com"], ["erin@example.com"]]
    assert "Backupsite: a link to set your password" in mailoutbox[0].subject
    assert admin_client.get(f"/clients/{erin.pk}/invite/").status_code == 405


def test_a_mail_server_that_refuses_leaves_the_client_saved_and_says_why(admin_client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens there
    response = admin_client.post(
        "/clients/new/", {"username": "frank", "email": "frank@example.com", "invite": "on"}, follow=True
    )
    page = response.content.decode()
    assert "The mail server did not take the invitation to frank@example.com" in page
    assert get_user_model().objects.filter(username="frank").exists()


def test_the_api_creates_a_client_with_an_invitation_and_resends_it(admin_user, smtp_server):
    api = APIClient()
    api.force_authenticate(admin_user)
    created = api.post(
        "/api/v1/clients/", {"username": "gina", "email": "gina@example.com", "invite": True}, format="json"
    )
    assert created.status_code == 201, created.json()
    assert created.json()["has_password"] is False
    assert "invite" not in created.json()
    assert "password" not in created.json()
    resent = api.post(f"/api/v1/clients/{created.json()['id']}/invite/")
    assert resent.status_code == 200
    assert resent.json() == {"sent_to": "gina@example.com"}
    assert [m["To"] for m in smtp_server.wait_for(2)] == ["gina@example.com"] * 2

    smtp_server_down = free_port()
    with override_settings(EMAIL_PORT=smtp_server_down):
        refused = api.post(
            "/api/v1/clients/", {"username": "ina", "email": "ina@example.com", "invite": True}, format="json"
        )
    assert refused.status_code == 503
    ina = get_user_model().objects.get(username="ina")
    assert refused.json()["detail"].endswith(
        f"The client is saved: POST /api/v1/clients/{ina.pk}/invite/ to send it again."
    )
    nothing = api.post("/api/v1/clients/", {"username": "hank"}, format="json")
    assert nothing.status_code == 400
    assert "password" in nothing.json()
    no_email = api.post("/api/v1/clients/", {"username": "hank", "invite": True}, format="json")
    assert no_email.status_code == 400
    assert "email" in no_email.json()
    hank = get_user_model().objects.create_user("hank", password="hank-pw-55555")
    assert api.post(f"/api/v1/clients/{hank.pk}/invite/").status_code == 400


def test_forgot_password_answers_the_same_for_any_address_and_mails_only_a_login(client, smtp_server):
    """
    GIVEN a client with a password and one invited who never chose one
    WHEN someone asks for a reset link for their addresses and for an unknown one
    THEN every answer is the same redirect and page; mails go to the two logins only
    """
    users = get_user_model().objects
    users.create_user("ivy", email="ivy@example.com", password="ivy-pw-24680")
    invited = users.create_user("jack", email="jack@example.com")
    assert not invited.has_usable_password()
    login_page = client.get("/login/").content.decode()
    assert 'href="/login/forgot/"' in login_page

    answers = []
    for address in ("nobody@example.com", "IVY@example.com", "jack@example.com"):
        response = client.post("/login/forgot/", {"email": address}, follow=True)
        page = re.sub(rb'"X-CSRFToken": "[^"]*"', b"", response.content)  # masked anew every time
        answers.append((response.redirect_chain, page))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == [("/login/forgot/sent/", 302)]
    received = smtp_server.wait_for(2)
    assert sorted(m["To"] for m in received) == ["ivy@example.com", "jack@example.com"]
    jack_mail = next(m for m in received if m["To"] == "jack@example.com")
    done = set_password_through(client, body_of(jack_mail), "Jacks-new-pw-1357")
    assert b"Your password is set" in done.content
    assert client.login(request=HttpRequest(), username="jack", password="Jacks-new-pw-1357")


def run_check(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EMAIL_") and k != "DEFAULT_FROM_EMAIL"}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**clean, "BACKUPSITE_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EMAIL_PORT": "smtp"}, "EMAIL_PORT must be an integer, not 'smtp'"),
        ({"EMAIL_PORT": "70000"}, "EMAIL_PORT must be at most 65535"),
        ({"EMAIL_USE_TLS": "maybe"}, "EMAIL_USE_TLS must be one of true/false"),
        ({"DEFAULT_FROM_EMAIL": "backups at example"}, "DEFAULT_FROM_EMAIL must be an email address"),
    ],
)
def test_a_mail_setting_that_does_not_parse_stops_the_program_with_its_name(env, message, tmp_path):
    done = run_check(env, tmp_path)
    assert done.returncode != 0
    assert message in done.stderr


def test_mail_settings_come_from_the_environment(tmp_path):
    env = {
        "EMAIL_HOST": "smtp.example.com",
        "EMAIL_PORT": "587",
        "EMAIL_HOST_USER": "panel",
        "EMAIL_USE_TLS": "true",
        "DEFAULT_FROM_EMAIL": "Backups <backups@example.com>",
    }
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, s.EMAIL_USE_TLS, s.DEFAULT_FROM_EMAIL)"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EMAIL_") and k != "DEFAULT_FROM_EMAIL"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **clean,
            "BACKUPSITE_DATA_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "backupsite.settings",
            **env,
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split("\n")[0] == "smtp.example.com 587 panel True Backups <backups@example.com>"


def test_asking_for_password_links_is_limited_per_address_and_per_client(client, smtp_server):
    """
    GIVEN a client with a login
    WHEN someone asks for links for that address again and again, then for many addresses
    THEN the fifth request for one address still gets a mail and the sixth is refused with
         a 429 that says why, sending nothing; past 20 requests from one client, any address
         is refused; the refusal reads the same whether the address has a login or not
    """
    from backupsite import passwords

    get_user_model().objects.create_user("kim", email="kim@example.com", password="kim-pw-97531")
    for _ in range(passwords.RESET_PER_ADDRESS):
        assert client.post("/login/forgot/", {"email": "kim@example.com"}).status_code == 302
    assert len(smtp_server.wait_for(passwords.RESET_PER_ADDRESS)) == passwords.RESET_PER_ADDRESS
    refused = client.post("/login/forgot/", {"email": "KIM@example.com"})
    assert refused.status_code == 429
    assert "Too many requests for a password link" in refused.content.decode()

    for n in range(passwords.RESET_PER_CLIENT - passwords.RESET_PER_ADDRESS - 1):
        assert client.post("/login/forgot/", {"email": f"other{n}@example.com"}).status_code == 302
    unknown = client.post("/login/forgot/", {"email": "fresh@example.com"})
    assert unknown.status_code == 429, "one client spreading requests over addresses is held too"

    def shown(response, address: bytes) -> bytes:  # the page without its masked tokens
        page = re.sub(rb'"X-CSRFToken": "[^"]*"|value="[^"]*"', b"", response.content)
        return page.replace(address, b"")

    assert shown(unknown, b"fresh@example.com") == shown(refused, b"KIM@example.com")
    time.sleep(0.5)  # mails go out in a thread: a late one would show now
    assert len(smtp_server.messages) == passwords.RESET_PER_ADDRESS

"""Field rules of a destination, through the page form and through the API alike."""

import pytest
from django.db import connection
from django.http import HttpRequest
from django.urls import reverse
from rest_framework.test import APIClient

from destinations.models import Destination

SECRET = "s3cret-Passw0rd-do-not-leak"

VALID = {
    "name": "Offsite FTP",
    "engine": "native",
    "directory": "backups/panel",
    "host": "ftp.example.com",
    "port": 21,
    "username": "backup",
    "password": SECRET,
    "timeout": 30,
    "retries": 5,
    "concurrency": 2,
    "ssl": True,
    "passive": True,
    "tls_fingerprint": "",
    "reindex_schedule": "",
    "read_only": False,
    "disabled": False,
}

INVALID = [
    ("name", "", "required|may not be blank"),
    ("name", "x" * 41, "at most 40 characters|no more than 40 characters"),
    ("engine", "s3", "not one of the available choices|not a valid choice"),
    ("directory", "/etc", "relative to the FTP user's home"),
    ("directory", "backups/../../etc", "'..'"),
    ("directory", "bad\x00name", "characters"),
    ("directory", "tab\there", "control characters"),
    ("host", "", "required|may not be blank"),
    ("host", "ftp://ftp.example.com", "without ftp://"),
    ("host", "ftp.example.com:2121", "Port field"),
    ("host", "bad_host!.com", "not a valid host name"),
    ("host", "999.1.1.1", "not a valid IPv4"),
    ("host", "user@ftp.example.com", "without ftp://, user or path"),
    ("port", 0, "greater than or equal to 1"),
    ("port", 65536, "less than or equal to 65535"),
    ("username", "", "required|may not be blank"),
    ("timeout", 0, "greater than or equal to 1"),
    ("timeout", 3601, "less than or equal to 3600"),
    ("retries", -1, ""),
    ("concurrency", -1, ""),
    ("tls_fingerprint", "AB:CD", "sha256:"),
    ("reindex_schedule", "every night", "five fields"),
    ("reindex_schedule", "61 * * * *", "Invalid cron expression"),
]


def form_data(**overrides):
    data = {**VALID, **overrides}
    for key in ("ssl", "passive", "read_only", "disabled"):
        if not data[key]:
            data.pop(key)
    return data


@pytest.fixture
def api(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "message"), INVALID)
def test_form_refuses_invalid_field_and_saves_nothing(admin_client, field, value, message):
    response = admin_client.post(reverse("destinations:create"), form_data(**{field: value}))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert_message(message, errors[field])
    assert not Destination.objects.exists()


def assert_message(expected, messages):
    assert len(set(messages)) == len(messages), f"an error said twice: {messages}"
    text = " ".join(messages).lower()
    assert any(alternative.lower() in text for alternative in expected.split("|")), messages


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "message"), INVALID)
def test_api_refuses_invalid_field_with_message_per_field(api, field, value, message):
    response = api.post("/api/v1/destinations/", {**VALID, field: value}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert field in body, body
    assert_message(message, body[field])
    assert not Destination.objects.exists()


@pytest.mark.django_db
def test_api_create_normalises_directory_and_host(api):
    response = api.post(
        "/api/v1/destinations/",
        {**VALID, "directory": "./backups//panel/", "host": "[2001:db8::1]"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["directory"] == "backups/panel"
    assert body["host"] == "2001:db8::1"
    assert "password" not in body


@pytest.mark.django_db
def test_api_defaults_match_the_issue(api):
    minimal = {"name": "Minimal", "host": "10.0.0.5", "username": "backup", "password": SECRET}
    body = api.post("/api/v1/destinations/", minimal, format="json").json()
    assert body["port"] == 21
    assert body["timeout"] == 30
    assert body["retries"] == 5
    assert body["concurrency"] == 2
    assert body["passive"] is True
    assert body["engine"] == "native"
    assert body["verify_schedule"] == "0 4 * * 0", "weekly integrity check"
    assert body["verify_read_percent"] == 5
    assert body["verified_at"] is None
    assert set(body) == {
        "id",
        "name",
        "engine",
        "directory",
        "host",
        "port",
        "username",
        "timeout",
        "retries",
        "concurrency",
        "ssl",
        "passive",
        "tls_fingerprint",
        "reindex_schedule",
        "verify_schedule",
        "verify_read_percent",
        "read_only",
        "disabled",
        "verified_at",
        "verify_result",
    }


@pytest.mark.django_db
def test_api_requires_password_on_create_but_not_on_update(api):
    no_password = {k: v for k, v in VALID.items() if k != "password"}
    response = api.post("/api/v1/destinations/", no_password, format="json")
    assert response.status_code == 400
    assert "password" in response.json()
    created = api.post("/api/v1/destinations/", VALID, format="json").json()
    response = api.patch(f"/api/v1/destinations/{created['id']}/", {"timeout": 45}, format="json")
    assert response.status_code == 200
    assert Destination.objects.get().password == SECRET  # (host, port and user need it again)


@pytest.mark.django_db
def test_api_name_is_unique(api):
    assert api.post("/api/v1/destinations/", VALID, format="json").status_code == 201
    response = api.post("/api/v1/destinations/", VALID, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


@pytest.mark.django_db
def test_api_list_is_paginated(api):
    for index in range(3):
        api.post("/api/v1/destinations/", {**VALID, "name": f"dest {index}"}, format="json")
    body = api.get("/api/v1/destinations/").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert [row["name"] for row in body["results"]] == ["dest 0", "dest 1", "dest 2"]


@pytest.mark.django_db
def test_api_is_for_staff_only(django_user_model):
    client_user = django_user_model.objects.create_user("carol", password="pw-carol-123")
    api = APIClient()
    api.force_authenticate(client_user)
    assert api.get("/api/v1/destinations/").status_code == 404, "a client is told nothing exists"
    assert APIClient().get("/api/v1/destinations/").status_code in (401, 403)


@pytest.mark.django_db
def test_form_blank_password_on_edit_keeps_the_saved_one(admin_client):
    admin_client.post(reverse("destinations:create"), form_data())
    destination = Destination.objects.get()
    response = admin_client.post(
        reverse("destinations:edit", args=[destination.pk]), form_data(password="", timeout=45)
    )
    assert response.status_code == 302
    destination.refresh_from_db()
    assert destination.timeout == 45
    assert destination.password == SECRET  # (host, port and user need it again)


@pytest.mark.django_db
def test_root_username_gets_a_visible_warning(admin_client):
    response = admin_client.post(reverse("destinations:create"), form_data(username="root"), follow=True)
    assert Destination.objects.get().username == "root"
    assert b"dedicated FTP user" in response.content
    page = admin_client.get(reverse("destinations:edit", args=[Destination.objects.get().pk]))
    warning = page.content.decode().split('id="root-warning"')[1][:80]
    assert "d-none" not in warning.split(">")[0]


@pytest.mark.django_db
def test_password_is_encrypted_at_rest_and_never_shown(admin_client, api, caplog):
    caplog.set_level("DEBUG")
    admin_client.post(reverse("destinations:create"), form_data())
    destination = Destination.objects.get()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM destinations_destination")
        raw = repr(cursor.fetchall())
    assert SECRET not in raw
    assert destination.password == SECRET
    page = admin_client.get(reverse("destinations:edit", args=[destination.pk]))
    assert SECRET not in page.content.decode()
    listing = admin_client.get(reverse("destinations:list"))
    assert SECRET not in listing.content.decode()
    assert SECRET not in api.get(f"/api/v1/destinations/{destination.pk}/").content.decode()
    assert SECRET not in api.get("/api/v1/destinations/").content.decode()
    assert SECRET not in repr(destination.ftp_settings())
    assert SECRET not in caplog.text


@pytest.mark.django_db
def test_form_rerendered_after_an_error_does_not_echo_the_password(admin_client):
    response = admin_client.post(reverse("destinations:create"), form_data(port=0))
    assert response.status_code == 200
    assert SECRET not in response.content.decode()


@pytest.mark.django_db
def test_deleting_a_destination_keeps_nothing_but_touches_no_server(admin_client):
    admin_client.post(reverse("destinations:create"), form_data(host="192.0.2.1"))
    destination = Destination.objects.get()
    response = admin_client.post(reverse("destinations:delete", args=[destination.pk]), follow=True)
    assert b"not touched" in response.content
    assert not Destination.objects.exists()


@pytest.mark.django_db
def test_clients_get_404_on_destination_pages(client, django_user_model):
    django_user_model.objects.create_user("carol", password="pw-carol-123")
    client.login(request=HttpRequest(), username="carol", password="pw-carol-123")
    assert client.get(reverse("destinations:list")).status_code == 404
    assert client.get(reverse("destinations:create")).status_code == 404

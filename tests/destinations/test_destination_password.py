"""The saved FTP password is bound to the host, port and user it was entered for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from destinations.models import Destination
from tests.support.ftp_servers import InProcessFtpServer, ServerState

pytestmark = pytest.mark.django_db

SAVED = "saved-Secret-for-server-A"
FaultServer = Callable[..., InProcessFtpServer]


class RecordsPasswords:
    """Writes down every password a client sends (options["received"])."""

    state: ServerState
    options: dict[str, Any]

    def ftp_PASS(self, line: str) -> Any:
        with self.state.lock:
            self.options["received"].append(line)
        return super().ftp_PASS(line)  # type: ignore[misc]


@pytest.fixture
def new(fault_ftp_server: FaultServer) -> InProcessFtpServer:
    """Server B, the new host: it records every password it is sent."""
    return fault_ftp_server(RecordsPasswords, user="alice", password="password-of-B", received=[])


@pytest.fixture
def destination(new: InProcessFtpServer) -> Destination:
    """Saved for server A (port 1 of this machine: never contacted here) with A's password."""
    d = Destination(name="bound", host=new.host, port=1, username="alice", ssl=False, timeout=3, retries=0)
    d.set_password(SAVED)
    d.save()
    return d


def form(destination: Destination, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": destination.name,
        "engine": destination.engine,
        "directory": destination.directory,
        "host": destination.host,
        "port": destination.port,
        "username": destination.username,
        "password": "",
        "timeout": destination.timeout,
        "retries": destination.retries,
        "concurrency": destination.concurrency,
        "passive": "on",
        "tls_fingerprint": "",
        "reindex_schedule": "",
    }
    data.update(overrides)
    return data


CHANGES = [
    pytest.param("port", id="port"),
    pytest.param("host", id="host"),
    pytest.param("username", id="username"),
]


def _changed(field: str, new: InProcessFtpServer) -> dict[str, Any]:
    if field == "port":
        return {"port": new.port}
    if field == "host":
        return {"host": "localhost", "port": new.port}
    return {"username": "mallory", "port": new.port}


@pytest.mark.parametrize("field", CHANGES)
def test_validate_of_unsaved_changes_never_sends_the_saved_password_to_the_new_server(
    field: str, admin_client: Any, destination: Destination, new: InProcessFtpServer, redis_settings: str
) -> None:
    """
    GIVEN a destination saved with server A's password
    WHEN the edit page's Validate posts the unsaved form with the host, port or user changed
         and the password left blank
    THEN Validate asks for the password, and server B never receives any password
    AND with the password typed in, Validate sends that one (and only that one)
    """
    url = reverse("destinations:validate")
    response = admin_client.post(
        url, {**form(destination, **_changed(field, new)), "destination_id": destination.pk}
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert 'id="validate-form-errors"' in text
    assert "enter the password again" in text
    assert new.options["received"] == []

    if field != "port":
        return  # the typed password reaching the new server is shown once, with server B's port
    response = admin_client.post(
        url,
        {
            **form(destination, **_changed(field, new), password="password-of-B"),
            "destination_id": destination.pk,
        },
    )
    assert 'data-check="Login" data-ok="true"' in response.content.decode()
    assert new.options["received"]
    assert set(new.options["received"]) == {"password-of-B"}
    assert SAVED not in new.options["received"]


@pytest.mark.parametrize("field", CHANGES)
def test_saving_a_new_host_port_or_user_without_the_password_is_refused_everywhere(
    field: str, admin_client: Any, admin_user: Any, destination: Destination, new: InProcessFtpServer
) -> None:
    """
    GIVEN a saved destination
    WHEN the page form, the API or the admin change its host, port or user without a password
    THEN each answers a field error on `password` and nothing is saved; with the password
         given again, the change is saved
    """
    change = _changed(field, new)
    before = Destination.objects.filter(pk=destination.pk).values().get()

    page = admin_client.post(reverse("destinations:edit", args=[destination.pk]), form(destination, **change))
    assert page.status_code == 200
    assert "enter the password again" in " ".join(page.context["form"].errors["password"])

    api = APIClient()
    api.force_authenticate(admin_user)
    answer = api.patch(f"/api/v1/destinations/{destination.pk}/", change, format="json")
    assert answer.status_code == 400
    assert "enter the password again" in " ".join(answer.json()["password"])

    admin_url = reverse("admin:destinations_destination_change", args=[destination.pk])
    admin_page = admin_client.post(admin_url, form(destination, **change))
    assert admin_page.status_code == 200
    assert "enter the password again" in " ".join(admin_page.context["adminform"].form.errors["password"])

    assert Destination.objects.filter(pk=destination.pk).values().get() == before

    answer = api.patch(
        f"/api/v1/destinations/{destination.pk}/", {**change, "password": "password-of-B"}, format="json"
    )
    assert answer.status_code == 200, answer.json()
    destination.refresh_from_db()
    assert destination.password == "password-of-B"
    assert getattr(destination, field) == change[field]


def test_other_settings_change_without_the_password(admin_user: Any, destination: Destination) -> None:
    api = APIClient()
    api.force_authenticate(admin_user)
    answer = api.patch(
        f"/api/v1/destinations/{destination.pk}/",
        {"timeout": 9, "host": f" {destination.host} "},
        format="json",
    )
    assert answer.status_code == 200, answer.json()  # spaces around the host are not a new host
    destination.refresh_from_db()
    assert destination.timeout == 9
    assert destination.password == SAVED

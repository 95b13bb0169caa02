"""Against pure-ftpd: an incremental run counts what it kept apart from what it sent, and the
queue page says so ("1.2 KiB sent, 21.0 MiB unchanged" rather than "21.0 MiB of 21.0 MiB");
Validate through the API records its result on the destination."""

from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from destinations.models import Destination
from jobs.templatetags.humanize_bytes import human_bytes
from tests.support.fixtures_jobs import make_job, run_job

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def test_an_incremental_run_reports_sent_and_unchanged_bytes(
    client, django_user_model, native_destination, home_account
):
    job = make_job(native_destination, home_account, retention=1)
    first = run_job(job)
    assert first.status == "completed", first.error
    assert first.bytes_unchanged == 0, "a first run sends everything"
    assert first.bytes_done > 1_000_000

    changed = Path(home_account.home) / "public_html" / "page0.php"
    changed.write_text(changed.read_text() + "// edited\n")
    second = run_job(job)
    assert second.status == "completed", second.error
    sent = second.bytes_done - second.bytes_unchanged
    assert 0 < sent < 100_000, "only the edited file went to the destination"
    assert second.bytes_unchanged > first.bytes_done - 100_000
    assert second.files_unchanged == second.files_total - 1

    client.force_login(
        django_user_model.objects.create_superuser("pages-progress", password="pages-progress-pw-1")
    )
    body = client.get(f"/queue/{second.pk}/").content.decode()
    expected = f"{human_bytes(sent)} sent, {human_bytes(second.bytes_unchanged)} unchanged"
    assert expected in body
    assert f"({second.files_unchanged} unchanged)" in body


def test_validate_through_the_api_records_pass_and_fail(django_user_model, native_destination):
    admin = django_user_model.objects.create_superuser("pages-api", password="pages-api-pw-1")
    api = APIClient()
    api.force_authenticate(admin)
    response = api.post(f"/api/v1/destinations/{native_destination.pk}/validate/")
    assert response.json()["ok"] is True
    native_destination.refresh_from_db()
    assert native_destination.validated_ok is True
    assert native_destination.validated_at is not None

    patched = api.patch(
        f"/api/v1/destinations/{native_destination.pk}/", {"password": "wrong-pw"}, format="json"
    )
    assert patched.status_code == 200
    native_destination.refresh_from_db()
    assert native_destination.validated_at is None, "other settings: the old result no longer holds"
    assert api.post(f"/api/v1/destinations/{native_destination.pk}/validate/").json()["ok"] is False
    assert Destination.objects.get(pk=native_destination.pk).validated_ok is False


def test_validating_the_saved_settings_from_the_page_records_and_shows_it(
    client, django_user_model, native_destination
):
    client.force_login(django_user_model.objects.create_superuser("pages-page", password="pages-page-pw-1"))
    d = native_destination
    form = {
        "destination_id": d.pk,
        "name": d.name,
        "engine": d.engine,
        "directory": d.directory,
        "host": d.host,
        "port": d.port,
        "username": d.username,
        "password": "",  # blank keeps the saved one: these are the saved settings
        "timeout": d.timeout,
        "retries": d.retries,
        "concurrency": d.concurrency,
        "passive": "on",
    }
    body = client.post("/destinations/validate/", form).content.decode()
    assert 'id="validate-summary"' in body
    assert 'tabindex="-1"' in body, "the summary can take the focus"
    assert 'id="validated-state" hx-swap-oob="outerHTML"' in body, "the page's last-validated line follows"
    d.refresh_from_db()
    assert d.validated_ok is True

    # an unsaved change the password is not bound to (host, port and user ask for it again)
    other = client.post("/destinations/validate/", {**form, "timeout": d.timeout + 1}).content.decode()
    assert 'id="validate-summary"' in other
    assert "hx-swap-oob" not in other, "unsaved settings do not touch the saved result"
    d.refresh_from_db()
    assert d.validated_ok is True

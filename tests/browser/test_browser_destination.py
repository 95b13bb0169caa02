"""The destination page in Chromium: fill it in, Validate, see each check, save."""

from __future__ import annotations

import pytest

from destinations.models import Destination
from tests.support.fixtures_browser import login

pytestmark = [pytest.mark.browser, pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def test_admin_fills_in_the_destination_page_validates_and_saves(
    page, live_server, django_user_model, pure_ftpd, ftp_dir, redis_settings, tmp_path
):
    django_user_model.objects.create_superuser("admin", password="admin-pw-123")
    login(page, live_server, "admin", "admin-pw-123")
    page.goto(f"{live_server.url}/destinations/new/")
    page.fill("#id_name", "Offsite pure-ftpd")
    page.check("#id_engine_0")
    page.fill("#id_directory", f"{ftp_dir}/backups")
    page.fill("#id_host", pure_ftpd.host)
    page.fill("#id_port", str(pure_ftpd.port))
    page.fill("#id_username", "root")
    assert page.is_visible("#root-warning"), "typing root shows the warning at once"
    page.fill("#id_username", pure_ftpd.user)
    assert not page.is_visible("#root-warning")
    page.fill("#id_password", pure_ftpd.password)
    page.fill("#id_timeout", "10")
    assert page.is_checked("#id_ssl")
    assert page.is_checked("#id_passive")
    assert page.input_value("#id_tls_fingerprint") == ""

    page.click("#validate-button")
    page.wait_for_selector("#validate-checks")
    tls = page.locator('[data-check="TLS"]')
    assert tls.get_attribute("data-ok") == "false"
    assert pure_ftpd.fingerprint in tls.inner_text()
    assert page.input_value("#id_tls_fingerprint") == pure_ftpd.fingerprint, "Validate fills in the pin"

    page.click("#validate-button")
    page.wait_for_selector("#validate-summary.alert-success")
    checks = page.locator("#validate-checks li")
    names = [checks.nth(i).get_attribute("data-check") for i in range(checks.count())]
    assert names[:5] == ["Connect", "TLS", "Login", "Server", "Directory"]
    assert {"Write", "List", "Read back", "Rename", "Delete"} <= set(names)
    for name in ("Connect", "TLS", "Login", "Write", "Read back", "Delete"):
        assert page.locator(f'[data-check="{name}"]').get_attribute("data-ok") == "true", name
    page.screenshot(path=str(tmp_path / "destination.png"), full_page=True)

    page.click("#save-button")
    page.wait_for_load_state("networkidle")
    assert "saved" in page.inner_text(".alert-success")
    destination = Destination.objects.get()
    assert destination.tls_fingerprint == pure_ftpd.fingerprint, "saving pins the fingerprint"
    assert destination.password == pure_ftpd.password
    assert destination.directory == f"{ftp_dir}/backups"
    assert pure_ftpd.password not in page.content()
    assert page.input_value("#id_password") == ""


def test_bad_input_is_shown_per_field_and_nothing_is_saved(page, live_server, django_user_model):
    django_user_model.objects.create_superuser("admin", password="admin-pw-123")
    login(page, live_server, "admin", "admin-pw-123")
    page.goto(f"{live_server.url}/destinations/new/")
    page.fill("#id_name", "x" * 40)
    page.fill("#id_directory", "../etc")
    page.fill("#id_host", "ftp://example.com")
    page.fill("#id_port", "70000")
    page.fill("#id_username", "backup")
    page.fill("#id_password", "secret-value-1")
    page.click("#save-button")
    page.wait_for_load_state("networkidle")
    for field in ("directory", "host", "port"):
        assert page.locator(f"#id_{field}.is-invalid").count() == 1, field
    assert "'..'" in page.inner_text("#div_id_directory")
    assert not Destination.objects.exists()
    assert page.input_value("#id_password") == "", "the password is not echoed back"

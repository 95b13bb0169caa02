"""Validate against real servers: each step reported, with the right hint on failure."""

import os

import pytest
from rest_framework.test import APIClient

from destinations import validate
from destinations.models import Destination
from tests.support.destinations import make_destination
from tests.support.ftp_servers import WindowsSyst

pytestmark = pytest.mark.peer


def names(report):
    return [(c.name, c.ok) for c in report.checks]


def failed(report):
    return next(c for c in report.checks if not c.ok and not c.warning)


def test_validate_runs_every_step_against_pure_ftpd_with_pinned_tls(pure_ftpd, ftp_dir):
    settings = pure_ftpd.settings(
        directory=f"{ftp_dir}/new/backups", ssl=True, tls_fingerprint=pure_ftpd.fingerprint
    )
    report = validate.run(settings)
    assert report.ok, report.as_dict()
    assert [name for name, _ in names(report)] == [
        "Connect",
        "TLS",
        "Login",
        "Server",
        "Directory",
        "Passive data connection",
        "Write",
        "List",
        "Read back",
        "Rename",
        "Delete",
        "Permissions",
    ]
    assert report.fingerprint == pure_ftpd.fingerprint
    assert (pure_ftpd.root / ftp_dir / "new" / "backups").is_dir(), "the directory is created when missing"
    assert not list((pure_ftpd.root / ftp_dir / "new" / "backups").iterdir()), "the probe file is deleted"


def test_validate_in_active_mode_names_the_active_data_connection(pure_ftpd, ftp_dir):
    report = validate.run(pure_ftpd.settings(directory=ftp_dir, passive=False, ssl=False))
    assert ("Active data connection", True) in names(report)
    tls = next(c for c in report.checks if c.name == "TLS")
    assert tls.warning, "plain FTP is allowed but warned about"
    assert report.ok


def test_validate_offers_the_fingerprint_of_an_untrusted_certificate(pure_ftpd, ftp_dir):
    report = validate.run(pure_ftpd.settings(directory=ftp_dir, ssl=True, tls_fingerprint=""))
    assert not report.ok
    check = failed(report)
    assert check.name == "TLS"
    assert pure_ftpd.fingerprint in check.detail
    assert report.fingerprint == pure_ftpd.fingerprint
    assert report.pin_suggested


def test_validate_refuses_a_changed_certificate(pure_ftpd, ftp_dir):
    wrong = "sha256:" + ":".join(["AB"] * 32)
    report = validate.run(pure_ftpd.settings(directory=ftp_dir, ssl=True, tls_fingerprint=wrong))
    check = failed(report)
    assert check.name == "TLS"
    assert "changed" in check.detail
    assert wrong in check.detail


def test_validate_reports_a_wrong_password_at_the_login_step(pure_ftpd, ftp_dir):
    # pure-ftpd answers a wrong password only after a deliberate delay of about 4 s.
    report = validate.run(
        pure_ftpd.settings(directory=ftp_dir, ssl=False, password="wrong-password", timeout=20)
    )
    check = failed(report)
    assert check.name == "Login"
    assert "password" in check.hint.lower()


def test_validate_reports_a_closed_port_at_the_connect_step():
    from tests.support.peers import free_port

    report = validate.run(
        Destination(host="127.0.0.1", port=free_port(), username="x", timeout=3).ftp_settings(password="x")
    )
    check = failed(report)
    assert check.name == "Connect"
    assert "port" in check.hint.lower()


def test_validate_refuses_a_windows_server(fault_ftp_server):
    server = fault_ftp_server(WindowsSyst)
    report = validate.run(server.settings())
    check = failed(report)
    assert check.name == "Server"
    assert "Windows" in check.detail


def test_validate_reports_tls_required(pure_ftpd_tls_required, ftp_dir):
    report = validate.run(pure_ftpd_tls_required.settings(directory=ftp_dir, ssl=False))
    check = failed(report)
    assert check.name == "TLS"
    assert "explicit SSL-FTP" in check.hint


def test_validate_of_a_read_only_destination_writes_nothing(pure_ftpd, ftp_dir):
    os.makedirs(pure_ftpd.root / ftp_dir, exist_ok=True)
    (pure_ftpd.root / ftp_dir / "keep.txt").write_text("x")
    report = validate.run(pure_ftpd.settings(directory=ftp_dir, ssl=False), read_only=True)
    assert report.ok
    assert sorted(os.listdir(pure_ftpd.root / ftp_dir)) == ["keep.txt"]
    assert ("Write", True) in names(report)


def test_validate_warns_about_a_world_writable_directory(pure_ftpd, ftp_dir):
    folder = pure_ftpd.root / ftp_dir
    folder.mkdir()
    folder.chmod(0o777)
    report = validate.run(pure_ftpd.settings(directory=ftp_dir, ssl=False))
    check = next(c for c in report.checks if c.name == "Permissions")
    assert check.warning
    assert "writable by others" in check.detail
    assert report.ok, "a warning does not fail validation"


@pytest.mark.django_db
def test_validate_api_answers_the_documented_shape(admin_user, pure_ftpd, ftp_dir, redis_settings):
    destination = make_destination(
        pure_ftpd, ftp_dir, name="ftp", ssl=True, tls_fingerprint=pure_ftpd.fingerprint, timeout=5
    )
    api = APIClient()
    api.force_authenticate(admin_user)
    body = api.post(f"/api/v1/destinations/{destination.pk}/validate/").json()
    assert body["ok"] is True
    assert body["fingerprint"] == pure_ftpd.fingerprint
    assert {"name", "ok", "detail"} <= set(body["checks"][0])
    assert pure_ftpd.password not in str(body)

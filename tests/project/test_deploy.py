"""`manage.py check --deploy` passes with production settings, and warns without them."""

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from tests.support import REPO

ROOT = REPO

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 20 + "a-long-random-production-secret-key-value-0123456789",
    "BACKUPSITE_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "backup.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "DATABASE_URL": "postgres://backupsite@db.example.com:5432/backupsite",
    "REDIS_URL": "redis://redis.example.com:6379/0",
}


def check_deploy(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # The test run itself sets DJANGO_ALLOW_ASYNC_UNSAFE (for Playwright); production does not.
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**clean, "BACKUPSITE_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_deploy_passes_with_production_settings(tmp_path):
    done = check_deploy(PRODUCTION, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_deploy_warns_about_keys_kept_in_the_data_folder(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k not in ("SECRET_KEY", "BACKUPSITE_ENCRYPTION_KEY")}
    done = check_deploy(env, tmp_path)
    assert done.returncode != 0
    assert "backupsite.W001" in done.stderr + done.stdout
    assert "backupsite.W002" in done.stderr + done.stdout


def test_a_bad_setting_stops_the_program_with_its_name(tmp_path):
    done = check_deploy({**PRODUCTION, "SECURE_HSTS_SECONDS": "a year"}, tmp_path)
    assert done.returncode != 0
    assert "SECURE_HSTS_SECONDS must be an integer" in done.stderr

import secrets

import pytest

pytest_plugins = [
    "tests.support.fixtures_ftp",
    "tests.support.fixtures_browser",
    "tests.support.fixtures_jobs",
    "tests.support.fixtures_restore",
    "tests.support.fixtures_notify",
]


@pytest.fixture(autouse=True)
def _test_settings(settings):
    # Tests don't run collectstatic; serve static files from the finders.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # A cache of the test's own (the panel's is the embedded Redis, which tests do not start).
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": secrets.token_hex(8),
        }
    }
    # Password hashing is deliberately slow; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

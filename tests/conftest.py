import pytest

pytest_plugins = [
    "tests.fixtures_ftp",
    "tests.fixtures_browser",
    "tests.fixtures_jobs",
    "tests.fixtures_restore",
    "tests.fixtures_notify",
]


@pytest.fixture(autouse=True)
def _test_settings(settings):
    # Tests don't run collectstatic; serve static files from the finders.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # Password hashing is deliberately slow; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

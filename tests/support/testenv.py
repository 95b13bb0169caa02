"""Loaded with `-p tests.support.testenv` before Django's settings: tests get their own data folder
unless the caller chose one (the Makefile does), so they never write into ./data."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("BACKUPSITE_DATA_DIR", tempfile.mkdtemp(prefix="backupsite-test-"))
(Path(os.environ["BACKUPSITE_DATA_DIR"]) / "static").mkdir(parents=True, exist_ok=True)
# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make
# around it are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

"""Fixtures for backup jobs against the real pure-ftpd, Redis and MariaDB."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

from backupsite.celery import app as celery_app
from destinations.models import Destination
from jobs import queue
from jobs.backup import cycle as backup
from jobs.models import Account, BackupJob, QueueItem
from tests.support.destinations import make_destination
from tests.support.homes import make_home
from tests.support.peers import missing_peer


@pytest.fixture
def redis_settings(redis_url, settings):
    settings.REDIS_URL = redis_url
    return redis_url


@pytest.fixture
def native_destination(db, pure_ftpd, ftp_dir, redis_settings):
    return make_destination(
        pure_ftpd,
        ftp_dir,
        name=f"ftp-{secrets.token_hex(3)}",
        ssl=False,
        timeout=10,
        retries=2,
        concurrency=2,
    )


@pytest.fixture
def home_account(db, tmp_path):
    username = f"u{secrets.token_hex(3)}"
    home = make_home(tmp_path / username)
    return Account.objects.create(username=username, home=str(home))


def make_job(destination: Destination, account: Account, **fields) -> BackupJob:
    defaults = {
        "name": f"job-{secrets.token_hex(3)}",
        "type": "incremental",
        "retention": 3,
        "include_databases": False,
        "accounts_mode": "selected",  # the account given, not every account of the test database
    }
    job = BackupJob.objects.create(destination=destination, **{**defaults, **fields})
    job.accounts.add(account)
    return job


def run_job(job: BackupJob) -> QueueItem:
    """Run one backup of `job` in this process, as a worker would."""
    item = queue.enqueue(
        QueueItem.Kind.BACKUP, dispatch=False, title=job.name, job=job, destination=job.destination
    )
    assert backup.take_job(item.pk) is True
    queue.run_item(item.pk, QueueItem.Kind.BACKUP, backup.run)
    item.refresh_from_db()
    return item


@pytest.fixture(scope="session")
def mysql_server():
    from jobs import mysql
    from jobs.dbserver.client import MysqlError

    server = mysql.server()
    try:
        server.query("SELECT 1")
    except MysqlError as exc:
        missing_peer(f"MariaDB/MySQL is not reachable at BACKUPSITE_MYSQL_URL: {exc}")
    return server


@pytest.fixture
def account_database(mysql_server, home_account):
    """A database of the account (named USERNAME_wp, as cPanel names them) with rows."""
    name = f"{home_account.username}_wp"
    mysql_server.query(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    mysql_server.query(
        "CREATE TABLE posts (id INT PRIMARY KEY, title VARCHAR(200), body TEXT) CHARACTER SET utf8mb4",
        database=name,
    )
    values = ",".join(
        f"({i}, 'title {i} ünïcode ''quoted''', REPEAT('body {i} ', 50))" for i in range(1, 301)
    )
    mysql_server.query(f"INSERT INTO posts VALUES {values}", database=name)
    yield name
    mysql_server.query(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def broker(redis_settings):
    """Send tasks from this process to the test Redis (the app read its broker at import)."""
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = redis_settings
    celery_app._pool = None
    yield redis_settings
    celery_app.conf.broker_url = previous
    celery_app._pool = None


def test_database_url() -> str:
    """The URL of the database this test runs on (SQLite or PostgreSQL), for a worker process."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    if db["ENGINE"] == "django.db.backends.postgresql":
        user = quote(db.get("USER") or "", safe="")
        password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
        host = db.get("HOST") or "localhost"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{user}{password}@{host}{port}/{quote(db['NAME'], safe='')}"
    raise NotImplementedError(f"a worker process for {db['ENGINE']}")


@pytest.fixture
def worker(broker, tmp_path):
    """A real `celery worker` process on the test database and Redis."""
    procs = []

    def start(concurrency: int = 2) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": broker,
            "BACKUPSITE_DATA_DIR": str(settings.DATA_DIR),
            # A killed worker's connection lease frees up after 10 s instead of a minute.
            "BACKUPSITE_LEASE_TTL": "10",
        }
        log = open(tmp_path / f"worker-{len(procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "celery"),
                *("-A", "backupsite", "worker", "--pool", "prefork", "--concurrency", str(concurrency)),
                *("--loglevel", "INFO", "--without-heartbeat", "--without-mingle", "--without-gossip"),
                *("--hostname", f"test-{secrets.token_hex(3)}@%h"),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

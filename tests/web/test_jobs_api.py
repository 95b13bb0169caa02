"""Accounts, jobs, queue and snapshots through the API and the pages; schedules in beat."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler
from rest_framework.test import APIClient

from backupsite.celery import app as celery_app
from destinations.models import Destination, Engine
from jobs import queue, schedules
from jobs.models import Account, BackupJob, QueueItem, Snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


@pytest.fixture
def destination():
    d = Destination(name="offsite", host="ftp.example.com", username="backup")
    d.set_password("pw")
    d.save()
    return d


@pytest.fixture
def account(tmp_path):
    return Account.objects.create(username="bob", home=str(tmp_path))


def beat_entry(name: str):
    """The entry beat builds from the database for `name`, when enabled (as beat sees it)."""
    model = PeriodicTask.objects.enabled().filter(name=name).first()
    return DatabaseScheduler.Entry(model, app=celery_app) if model is not None else None


def job_form(destination, account, **overrides):
    data = {
        "name": "nightly",
        "destination": destination.pk,
        "accounts": [account.pk],
        "type": "incremental",
        "retention": 7,
        "compression": "on",
        "include_home": "on",
        "include_databases": "on",
        "excludes": "*.tmp\ncache/",
        "enabled": "on",
        "schedule_kind": "daily",
        "schedule_time": "03:30",
        "schedule_minute": "0",
        "schedule_weekday": "0",
        "schedule_day": "1",
        "schedule_cron": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_schedules_edited_in_the_form_show_up_in_beat(admin_client, destination, account):
    response = admin_client.post(reverse("jobs:job-create"), job_form(destination, account))
    assert response.status_code == 302, response.context["form"].errors
    job = BackupJob.objects.get()
    name = schedules.job_task_name(job.pk)
    entry = beat_entry(name)
    assert entry is not None
    assert entry.schedule._orig_minute == "30"
    assert entry.schedule._orig_hour == "3"
    assert entry.args == [job.pk]
    assert entry.task == "jobs.tasks.scheduled_backup"

    edit = job_form(destination, account, schedule_kind="weekly", schedule_time="04:15", schedule_weekday="1")
    assert admin_client.post(reverse("jobs:job-edit", args=[job.pk]), edit).status_code == 302
    entry = beat_entry(name)
    assert (entry.schedule._orig_minute, entry.schedule._orig_hour, entry.schedule._orig_day_of_week) == (
        "15",
        "4",
        "1",
    )
    job.refresh_from_db()
    assert job.schedule == "15 4 * * 1"

    cron = job_form(destination, account, schedule_kind="cron", schedule_cron="*/20 1-5 * * 1-5")
    assert admin_client.post(reverse("jobs:job-edit", args=[job.pk]), cron).status_code == 302
    assert beat_entry(name).schedule._orig_minute == "*/20"

    paused = job_form(
        destination, account, schedule_kind="cron", schedule_cron="*/20 1-5 * * 1-5", enabled=None
    )
    assert admin_client.post(reverse("jobs:job-edit", args=[job.pk]), paused).status_code == 302
    assert beat_entry(name) is None, "a disabled job is not scheduled"

    manual = job_form(destination, account, schedule_kind="manual")
    assert admin_client.post(reverse("jobs:job-edit", args=[job.pk]), manual).status_code == 302
    assert beat_entry(name) is None
    job.delete()
    assert beat_entry(name) is None


def test_job_form_refuses_a_bad_cron_expression_and_saves_nothing(admin_client, destination, account):
    response = admin_client.post(
        reverse("jobs:job-create"),
        job_form(destination, account, schedule_kind="cron", schedule_cron="99 * * * *"),
    )
    assert response.status_code == 200
    assert "schedule_cron" in response.context["form"].errors
    assert not BackupJob.objects.exists()


def test_job_form_without_any_account_says_so_and_saves_nothing(admin_client, destination, account):
    """
    GIVEN no account with a home folder (the accounts checkbox list is empty)
    WHEN the job form is opened and submitted
    THEN it says why and where to add one, and no job is saved; with an account it says nothing
    """
    assert 'id="no-accounts"' not in admin_client.get(reverse("jobs:job-create")).content.decode()
    account.delete()
    response = admin_client.post(reverse("jobs:job-create"), job_form(destination, account))

    assert response.status_code == 200
    assert "accounts" in response.context["form"].errors
    page = response.content.decode()
    assert 'id="no-accounts"' in page
    assert reverse("jobs:account-create") in page
    assert not BackupJob.objects.exists()


def test_api_jobs_have_the_documented_fields_and_schedule_follows_edits(api, destination, account):
    body = {
        "name": "nightly",
        "destination": destination.pk,
        "accounts": [account.pk],
        "type": "full",
        "retention": 3,
        "compression": True,
        "include_home": True,
        "include_databases": False,
        "excludes": ["*.log"],
        "schedule": "0 2 * * *",
        "enabled": True,
    }
    created = api.post("/api/v1/jobs/", body, format="json")
    assert created.status_code == 201, created.json()
    data = created.json()
    filters = {"accounts_mode", "include", "exclude", "resellers", "skip_suspended", "parallel"}
    assert set(data) == {"id", *body, *filters}
    assert data["accounts_mode"] == "selected"  # it named its accounts
    assert beat_entry(schedules.job_task_name(data["id"])).schedule._orig_hour == "2"
    patched = api.patch(f"/api/v1/jobs/{data['id']}/", {"schedule": ""}, format="json")
    assert patched.status_code == 200
    assert beat_entry(schedules.job_task_name(data["id"])) is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("retention", 0, "greater than or equal to 1"),
        ("retention", 100, "less than or equal to 99"),
        ("type", "differential", "not a valid choice"),
        ("schedule", "every day", "five fields"),
        ("excludes", ["/etc/*"], "relative to the home folder"),
        ("accounts", [], "at least one account"),
        ("name", "", "blank"),
    ],
)
def test_api_refuses_bad_job_fields(api, destination, account, field, value, message):
    body = {"name": "j", "destination": destination.pk, "accounts": [account.pk], field: value}
    response = api.post("/api/v1/jobs/", body, format="json")
    assert response.status_code == 400
    assert message in " ".join(map(str, response.json()[field]))
    assert not BackupJob.objects.exists()


def test_api_refuses_a_job_on_a_cpanel_destination(api, destination, account):
    destination.engine = Engine.CPANEL
    destination.save()
    body = {"name": "j", "destination": destination.pk, "accounts": [account.pk]}
    response = api.post("/api/v1/jobs/", body, format="json")
    assert response.status_code == 400
    assert "Backupsite engine" in str(response.json()["destination"])


def test_api_run_answers_the_queue_item(api, destination, account):
    job = BackupJob.objects.create(name="j", destination=destination)
    job.accounts.add(account)
    response = api.post(f"/api/v1/jobs/{job.pk}/run/")
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {
        "id",
        "kind",
        "status",
        "progress",
        "bytes_done",
        "bytes_total",
        "files_done",
        "files_total",
        "log",
        "error",
        "result",
        "created",
        "started",
        "finished",
    }
    assert body["kind"] == "backup"
    assert body["status"] == "pending"
    assert QueueItem.objects.get(pk=body["id"]).job == job


def test_api_accounts_have_the_documented_fields(api, django_user_model):
    carol = django_user_model.objects.create_user("carol", password="x")
    response = api.post(
        "/api/v1/accounts/",
        {"username": "alice", "home": "/home/alice", "databases": [], "owner": "carol"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json() == {
        "id": response.json()["id"],
        "username": "alice",
        "home": "/home/alice",
        "databases": [],
        "owner": "carol",
        "source": "manual",
        "reseller": "",
        "domains": [],
        "suspended": False,
        "plan": "",
        "database_users": [],
        "removed_at": None,
        "admin_fields": ["databases", "home"],  # discovery leaves what the admin set alone
        "warnings": [
            "The home folder /home/alice does not exist on this server: backups of its files fail until it does."
        ],
    }
    assert Account.objects.get(username="alice").owner == carol
    bad = api.post("/api/v1/accounts/", {"username": "Bad Name", "home": "relative"}, format="json")
    assert bad.status_code == 400
    assert {"username", "home"} <= set(bad.json())


def test_queue_abort_of_a_pending_item_aborts_it_at_once(api, destination, account):
    item = queue.enqueue(QueueItem.Kind.BACKUP, dispatch=False, destination=destination)
    response = api.post(f"/api/v1/queue/{item.pk}/abort/")
    assert response.status_code == 200
    assert response.json()["status"] == "aborted"
    assert api.post(f"/api/v1/queue/{item.pk}/abort/").status_code == 409


def test_queue_abort_of_a_running_item_asks_its_worker_to_stop(api, destination):
    item = queue.enqueue(QueueItem.Kind.BACKUP, dispatch=False, destination=destination)
    queue.claim(item.pk)
    assert api.post(f"/api/v1/queue/{item.pk}/abort/").status_code == 200
    item.refresh_from_db()
    assert item.abort_requested
    assert item.status == "running"


def test_a_running_item_without_heartbeat_is_reaped_as_failed(destination):
    from datetime import timedelta

    from django.utils import timezone

    item = queue.enqueue(QueueItem.Kind.BACKUP, dispatch=False, destination=destination)
    queue.claim(item.pk)
    assert queue.reap_stale() == 0
    assert queue.reap_stale(now=timezone.now() + timedelta(minutes=5)) == 1
    item.refresh_from_db()
    assert item.status == "failed"
    assert item.finished is not None


def test_snapshots_filter_by_account_and_destination_and_lock(api, destination, account):
    from django.utils import timezone

    make = lambda name, path: Snapshot.objects.create(  # noqa: E731
        destination=destination,
        account_name=name,
        engine="native",
        path=path,
        created=timezone.now(),
        state="complete",
    )
    bob = make("bob", "bob/20250101T000000Z-00000001")
    make("eve", "eve/20250101T000000Z-00000002")
    rows = api.get("/api/v1/snapshots/?account=bob").json()["results"]
    assert [r["id"] for r in rows] == [bob.pk]
    assert set(rows[0]) == {
        "id",
        "destination",
        "account",
        "engine",
        "type",
        "path",
        "created",
        "size",
        "complete",
        "locked",
        "flags",
        "parts",
        "verified_at",
        "damaged",
        "problems",
    }
    assert api.get(f"/api/v1/snapshots/?destination={destination.pk}").json()["count"] == 2
    assert api.get("/api/v1/snapshots/?destination=999").json()["count"] == 0
    assert api.post(f"/api/v1/snapshots/{bob.pk}/lock/").json()["locked"] is True
    assert api.post(f"/api/v1/snapshots/{bob.pk}/unlock/").json()["locked"] is False


def test_api_token_command_prints_a_working_token(admin_user, destination):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("api_token", admin_user.username, stdout=out)
    key = out.getvalue().strip()
    client = APIClient()
    assert client.get("/api/v1/destinations/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    assert client.get("/api/v1/destinations/", HTTP_AUTHORIZATION="Token wrong").status_code == 401


def test_openapi_schema_is_served(api):
    response = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert b"/api/v1/destinations/{id}/validate/" in response.content


def test_the_openapi_schema_is_not_shown_to_anyone_not_logged_in():
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code in (401, 403)
    assert b"/api/v1/destinations/" not in response.content


def test_a_destination_with_jobs_is_not_deleted(api, admin_client, destination, account):
    job = BackupJob.objects.create(name="nightly", destination=destination)
    job.accounts.add(account)
    response = api.delete(f"/api/v1/destinations/{destination.pk}/")
    assert response.status_code == 400
    assert "nightly" in str(response.json())
    page = admin_client.post(reverse("destinations:delete", args=[destination.pk]), follow=True)
    assert "Delete or move them first" in page.content.decode()
    assert Destination.objects.filter(pk=destination.pk).exists()
    job.delete()
    assert api.delete(f"/api/v1/destinations/{destination.pk}/").status_code == 204


def test_a_new_job_covers_all_accounts_with_filters_from_the_form_and_the_api(
    admin_client, api, destination, account
):
    """GIVEN no accounts chosen WHEN a job is saved from the form with accounts_mode=all and
    filters, or from the API without accounts THEN it covers all accounts with those filters;
    `selected` without accounts is refused in both, naming the field."""
    form = job_form(
        destination,
        account,
        accounts=None,
        accounts_mode="all",
        include="shop*\nblog*",
        exclude="shop-test",
        resellers="res1",
        skip_suspended="on",
        parallel="3",
    )
    response = admin_client.post(reverse("jobs:job-create"), form)
    assert response.status_code == 302, response.context["form"].errors
    job = BackupJob.objects.get(name="nightly")
    assert (job.accounts_mode, job.include, job.exclude, job.resellers, job.skip_suspended, job.parallel) == (
        "all",
        ["shop*", "blog*"],
        ["shop-test"],
        ["res1"],
        True,
        3,
    )
    assert "all accounts" in admin_client.get(reverse("jobs:jobs")).content.decode()
    refused = admin_client.post(
        reverse("jobs:job-create"),
        job_form(destination, account, name="other", accounts=None, accounts_mode="selected"),
    )
    assert "accounts" in refused.context["form"].errors

    created = api.post("/api/v1/jobs/", {"name": "api-all", "destination": destination.pk}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["accounts_mode"] == "all"
    assert created.json()["parallel"] == 2
    bad = api.post(
        "/api/v1/jobs/",
        {
            "name": "api-sel",
            "destination": destination.pk,
            "accounts_mode": "selected",
            "resellers": ["Bad Name"],
        },
        format="json",
    )
    assert bad.status_code == 400
    assert set(bad.json()) == {"resellers"}
    empty = api.post(
        "/api/v1/jobs/",
        {"name": "api-sel", "destination": destination.pk, "accounts_mode": "selected"},
        format="json",
    )
    assert empty.status_code == 400
    assert "at least one account" in str(empty.json()["accounts"])

"""What the pages say: times with seconds and the user's zone, schedules in words with their
next run, the jobs' last runs, links into every backup, progress that says what it counts,
identical versions grouped, the HTML limits of the server's rules, a missing home folder."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from backupsite.models import Preferences
from backupsite.templatetags.when import relative
from destinations import cron, listing, validated
from destinations.forms import DestinationForm
from destinations.models import Destination
from jobs.forms import AccountForm, BackupJobForm
from jobs.models import Account, BackupJob, QueueItem, Snapshot
from jobs.templatetags.humanize_bytes import progress_text

pytestmark = pytest.mark.django_db

MOMENT = datetime(2026, 7, 4, 12, 0, 5, tzinfo=UTC)


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("pages-admin", password="pages-admin-pw-1")


@pytest.fixture
def destination():
    destination = Destination(name="pages-offsite", host="192.0.2.20", username="backup")
    destination.set_password("pw-1")
    destination.save()
    return destination


def _queue_item(**fields):
    item = QueueItem.objects.create(kind=QueueItem.Kind.BACKUP, **fields)
    QueueItem.objects.filter(pk=item.pk).update(created=MOMENT)
    return item


# --- times -------------------------------------------------------------------------------------


def test_times_show_seconds_and_the_servers_zone_by_default(client, admin, settings):
    settings.TIME_ZONE = "UTC"
    item = _queue_item(status="completed")
    client.force_login(admin)
    body = client.get(f"/queue/{item.pk}/").content.decode()
    assert '<time datetime="2026-07-04T12:00:05+00:00"' in body
    assert "2026-07-04 12:00:05 UTC</time>" in body


def test_times_follow_the_users_time_zone_preference(client, admin):
    item = _queue_item(status="completed")
    client.force_login(admin)
    page = client.get("/preferences/")
    assert page.status_code == 200
    assert "The server&#x27;s (UTC)" in page.content.decode()
    response = client.post("/preferences/", {"time_zone": "Europe/Berlin"})
    assert response.status_code == 302
    assert Preferences.objects.get(user=admin).time_zone == "Europe/Berlin"
    body = client.get(f"/queue/{item.pk}/").content.decode()
    assert "2026-07-04 14:00:05 CEST</time>" in body, "summer time in Berlin is UTC+2"
    rows = client.get("/queue/rows/").content.decode()
    assert "2026-07-04 14:00:05 CEST" in rows


def test_a_time_zone_the_server_does_not_know_is_refused(client, admin):
    client.force_login(admin)
    response = client.post("/preferences/", {"time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 200
    assert "is-invalid" in response.content.decode()
    assert not Preferences.objects.exists()


def test_each_user_sees_their_own_zone(client, admin, django_user_model):
    Preferences.objects.create(user=admin, time_zone="Asia/Tokyo")
    other = django_user_model.objects.create_superuser("pages-other", password="pages-other-pw-1")
    item = _queue_item(status="completed")
    client.force_login(admin)
    assert "2026-07-04 21:00:05 JST" in client.get(f"/queue/{item.pk}/").content.decode()
    client.force_login(other)
    assert "2026-07-04 12:00:05 UTC" in client.get(f"/queue/{item.pk}/").content.decode()


def test_relative_times_say_how_long_ago_or_how_soon():
    now = MOMENT
    assert relative(now - timedelta(hours=3, minutes=20), now) == "3 hours ago"
    assert relative(now - timedelta(minutes=1), now) == "1 minute ago"
    assert relative(now + timedelta(minutes=5, seconds=3), now) == "in 5 minutes"
    assert relative(now - timedelta(seconds=3), now) == "just now"
    assert relative(now - timedelta(days=2, hours=5), now) == "2 days ago"


# --- schedules ---------------------------------------------------------------------------------


def test_schedules_read_as_words():
    assert cron.describe("0 2 * * *") == "At 02:00"
    assert cron.describe("*/15 * * * *") == "Every 15 minutes"
    assert cron.describe("30 5 * * 1-5") == "At 05:30, Monday through Friday"
    assert cron.describe("") == ""


def test_next_run_follows_celerys_reading_of_the_expression():
    after = datetime(2026, 12, 4, 3, 35, tzinfo=UTC)  # a Friday
    assert cron.next_run("0 2 * * *", after, "UTC") == datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    assert cron.next_run("*/15 * * * *", after, "UTC") == datetime(2026, 12, 4, 3, 45, tzinfo=UTC)
    assert cron.next_run("30 5 * * 1-5", after, "UTC") == datetime(2026, 12, 4, 5, 30, tzinfo=UTC)
    assert cron.next_run("0 6 * * 0", after, "UTC") == datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
    # Celery's crontab wants day of month AND day of week: the next Monday the 1st.
    assert cron.next_run("0 3 1 * mon", after, "UTC") == datetime(2027, 2, 1, 3, 0, tzinfo=UTC)
    assert cron.next_run("0 0 30 2 *", after, "UTC") is None, "30 February never comes"
    assert cron.next_run("0 0 29 2 *", after, "UTC") == datetime(2028, 2, 29, 0, 0, tzinfo=UTC), "a leap year"
    assert cron.next_run("35 3 * * *", after, "UTC") == datetime(2026, 12, 5, 3, 35, tzinfo=UTC), (
        "strictly after"
    )
    assert cron.next_run("", after) is None


def test_next_run_is_in_the_servers_time_zone_across_a_dst_change():
    # 2026-03-29 in Berlin: 02:00-03:00 does not exist; 02:30 reads with the winter offset.
    after = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    berlin = cron.next_run("30 2 * * *", after, "Europe/Berlin")
    assert berlin is not None
    assert berlin.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    autumn = cron.next_run("30 2 * * *", datetime(2026, 10, 24, 12, 0, tzinfo=UTC), "Europe/Berlin")
    assert autumn is not None
    assert autumn.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    ordinary = cron.next_run("0 4 * * *", after, "Europe/Berlin")
    assert ordinary is not None
    assert ordinary.astimezone(UTC) == datetime(2026, 3, 29, 2, 0, tzinfo=UTC)


def test_the_jobs_list_shows_schedule_in_words_next_run_and_last_run(client, admin, destination, settings):
    settings.TIME_ZONE = "UTC"
    job = BackupJob.objects.create(name="pages-nightly", destination=destination, schedule="0 2 * * *")
    never = BackupJob.objects.create(name="pages-manual", destination=destination)
    _queue_item(job=job, status="failed")
    newer = _queue_item(job=job, status="completed")
    QueueItem.objects.filter(pk=newer.pk).update(created=MOMENT + timedelta(hours=1))
    QueueItem.objects.create(kind=QueueItem.Kind.ROTATION, job=job, status="failed")  # not a run
    client.force_login(admin)
    body = client.get("/jobs/").content.decode()
    row = re.search(rf'<tr data-job="{job.pk}">(.*?)</tr>', body, re.S)
    assert row is not None
    cells = row.group(1)
    assert "At 02:00 (server time, UTC)" in cells
    assert '<code class="small">0 2 * * *</code>' in cells
    next_cell = re.search(r'class="job-next-run">(.*?)</td>', cells, re.S)
    assert next_cell is not None
    assert "<time datetime=" in next_cell.group(1)
    assert re.search(r"in \d+ (hour|minute)s?", next_cell.group(1))
    last_cell = re.search(r'class="job-last-run">(.*?)</td>', cells, re.S)
    assert last_cell is not None
    assert f'href="/queue/{newer.pk}/"' in last_cell.group(1)
    assert "Completed" in last_cell.group(1)
    other = re.search(rf'<tr data-job="{never.pk}">(.*?)</tr>', body, re.S)
    assert other is not None
    assert "never run" in other.group(1)
    assert "only when run by hand" in other.group(1)


def test_every_backup_in_a_list_links_to_it(client, admin, destination):
    snapshot = Snapshot.objects.create(
        destination=destination,
        account_name="pagesbob",
        engine="native",
        path="pagesbob/1",
        created=MOMENT,
        state="complete",
    )
    client.force_login(admin)
    for page in ("/backups/", f"/destinations/{destination.pk}/"):
        body = client.get(page).content.decode()
        assert f'<a href="/backups/{snapshot.pk}/"><time datetime="2026-07-04T12:00:05+00:00"' in body, page


# --- validated ---------------------------------------------------------------------------------


def test_a_validate_of_the_saved_settings_is_recorded_and_a_change_forgets_it(destination):
    session: dict[str, object] = {}
    saved = validated.digest(destination)
    assert validated.remember(session, destination, True, saved_digest=saved) is True
    destination.refresh_from_db()
    assert destination.validated_ok is True
    assert destination.validated_at is not None
    assert "pw-1" not in repr(session), "the session keeps a keyed digest, not the password"

    changed = Destination.objects.get(pk=destination.pk)
    changed.host = "192.0.2.21"
    changed.save()
    validated.after_save({}, changed, before=saved)
    changed.refresh_from_db()
    assert changed.validated_at is None
    assert changed.validated_ok is None


def test_validating_unsaved_settings_records_nothing_until_they_are_saved(destination):
    session: dict[str, object] = {}
    saved = validated.digest(destination)
    candidate = Destination.objects.get(pk=destination.pk)
    candidate.port = 2121
    assert validated.remember(session, candidate, False, saved_digest=saved) is False
    destination.refresh_from_db()
    assert destination.validated_at is None
    candidate.save()  # the admin saves what they validated
    validated.after_save(session, candidate, before=saved)
    candidate.refresh_from_db()
    assert candidate.validated_ok is False
    assert candidate.validated_at is not None


def test_a_new_password_counts_as_other_settings(destination):
    before = validated.digest(destination)
    destination.set_password("another-pw")
    assert validated.digest(destination) != before


def test_the_destination_list_and_page_show_the_last_validation(client, admin, destination):
    client.force_login(admin)
    assert "not with these settings" in client.get("/destinations/").content.decode()
    assert (
        "Not validated with these settings yet."
        in client.get(f"/destinations/{destination.pk}/").content.decode()
    )
    Destination.objects.filter(pk=destination.pk).update(
        validated_at=timezone.now() - timedelta(hours=3, minutes=2), validated_ok=True
    )
    listing_page = client.get("/destinations/").content.decode()
    assert re.search(
        r"passed</span> <time datetime=\"[^\"]+\" title=\"[^\"]+\">3 hours ago</time>", listing_page
    )
    page = client.get(f"/destinations/{destination.pk}/").content.decode()
    assert "Last validated <time" in page
    assert "3 hours ago</time>" in page
    assert "passed" in page


# --- progress ----------------------------------------------------------------------------------


def test_an_incremental_runs_progress_says_what_was_sent_and_what_was_unchanged():
    item = SimpleNamespace(
        kind="backup",
        bytes_done=22_020_096 + 1275,
        bytes_total=22_020_096 + 1275,
        bytes_unchanged=22_020_096,
        files_done=120,
        files_total=120,
        files_unchanged=119,
    )
    text = progress_text(item)
    assert text.startswith("1.2 KiB sent, 21.0 MiB unchanged, of 21.0 MiB scanned")
    assert "120 of 120 files (119 unchanged)" in text


def test_a_full_runs_progress_says_what_was_sent():
    item = SimpleNamespace(
        kind="backup",
        bytes_done=1024,
        bytes_total=4096,
        bytes_unchanged=0,
        files_done=1,
        files_total=4,
        files_unchanged=0,
    )
    assert progress_text(item) == "1.0 KiB of 4.0 KiB sent · 1 of 4 files"
    item.kind = "restore"
    assert progress_text(item).startswith("1.0 KiB of 4.0 KiB restored")


# --- versions ----------------------------------------------------------------------------------


def _backup_with(destination, account, created, size, mtime):
    entries = [listing.Entry(path="public_html/index.php", type="file", size=size, mtime=mtime)]
    return Snapshot.objects.create(
        destination=destination,
        account=account,
        account_name=account.username,
        engine="native",
        path=f"{account.username}/{created:%Y%m%dT%H%M%S}",
        created=created,
        state="complete",
        listing_root=listing.build(entries),
    )


def test_identical_versions_are_one_row_with_the_backups_that_hold_them(client, admin, destination):
    account = Account.objects.create(username="pagesver")
    days = [MOMENT - timedelta(days=n) for n in range(6)]  # newest first
    # newest: a changed file; then the same version in 4 backups; the oldest another one.
    _backup_with(destination, account, days[0], 900, 1_780_000_300)
    same = [_backup_with(destination, account, day, 800, 1_780_000_200) for day in days[1:5]]
    _backup_with(destination, account, days[5], 700, 1_780_000_100)
    client.force_login(admin)
    body = client.get(f"/accounts/{account.pk}/versions/", {"path": "public_html/index.php"}).content.decode()
    rows = re.findall(r'<tr data-snapshot="(\d+)" data-backups="(\d+)">', body)
    assert [int(n) for _pk, n in rows] == [1, 4, 1]
    assert int(rows[1][0]) == same[0].pk, "the group restores its newest backup"
    assert "same in 4 backups: from" in body
    assert f'href="/backups/{same[-1].pk}/"' in body
    assert f'href="/backups/{same[0].pk}/"' in body

    api = APIClient()
    api.force_authenticate(admin)
    results = api.get(f"/api/v1/accounts/{account.pk}/versions/", {"path": "public_html/index.php"}).json()[
        "results"
    ]
    assert [r["group"] for r in results] == [1, 2, 2, 2, 2, 3]
    assert {"snapshot", "created", "engine", "type", "size", "mtime", "entry_type"} <= set(results[0])


# --- forms -------------------------------------------------------------------------------------


def _attrs(html: str, name: str) -> dict[str, str]:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert tag is not None, name
    return dict(re.findall(r'(\w+)="([^"]*)"', tag.group(0)))


def test_html_limits_are_the_servers_rules():
    html = str(DestinationForm())
    port = _attrs(html, "port")
    assert (port["min"], port["max"]) == ("1", "65535")
    assert _attrs(html, "name")["maxlength"] == "40"
    timeout = _attrs(html, "timeout")
    assert (timeout["min"], timeout["max"]) == ("1", "3600")
    assert _attrs(html, "retries")["max"] == "1000"
    assert _attrs(html, "concurrency")["max"] == "64"
    job = str(BackupJobForm())
    retention = _attrs(job, "retention")
    assert (retention["min"], retention["max"]) == ("1", "99")
    assert _attrs(job, "name")["maxlength"] == "80"
    assert _attrs(str(AccountForm()), "username")["maxlength"] == "32"


def test_a_port_of_zero_is_refused_by_the_form_as_by_the_page():
    form = DestinationForm(
        {
            "name": "x",
            "engine": "native",
            "host": "192.0.2.1",
            "port": "0",
            "username": "u",
            "password": "p",
            "timeout": "30",
            "retries": "5",
            "concurrency": "2",
        }
    )
    assert not form.is_valid()
    assert "port" in form.errors


# --- home folder warning -----------------------------------------------------------------------


def test_a_home_folder_that_does_not_exist_is_saved_with_a_warning(client, admin, tmp_path):
    client.force_login(admin)
    missing = tmp_path / "nobody-here"
    response = client.post("/accounts/new/", {"username": "pageshome", "home": str(missing)}, follow=True)
    body = response.content.decode()
    assert Account.objects.filter(username="pageshome").exists(), "a warning, not an error"
    assert f"The home folder {missing} does not exist on this server" in body
    account = Account.objects.get(username="pageshome")
    edit = client.get(f"/accounts/{account.pk}/edit/").content.decode()
    assert "form-warning" in edit
    assert "does not exist" in edit

    (missing).mkdir()
    response = client.post(
        f"/accounts/{account.pk}/edit/", {"username": "pageshome", "home": str(missing)}, follow=True
    )
    assert "does not exist" not in response.content.decode()


def test_the_api_answers_the_warning_beside_the_account(admin, tmp_path):
    api = APIClient()
    api.force_authenticate(admin)
    created = api.post(
        "/api/v1/accounts/", {"username": "pagesapi", "home": str(tmp_path / "gone")}, format="json"
    )
    assert created.status_code == 201
    assert created.json()["warnings"] == [
        f"The home folder {tmp_path / 'gone'} does not exist on this server: backups of its files fail until it does."
    ]
    there = api.post("/api/v1/accounts/", {"username": "pagesapi2", "home": str(tmp_path)}, format="json")
    assert there.json()["warnings"] == []


def test_a_cpanel_destination_says_when_it_reindexes_next(client, admin, destination):
    Destination.objects.filter(pk=destination.pk).update(engine="cpanel", reindex_schedule="30 5 * * *")
    client.force_login(admin)
    body = client.get(f"/destinations/{destination.pk}/").content.decode()
    line = re.search(r'<p class="small mb-2" id="reindex-schedule">(.*?)</p>', body, re.S)
    assert line is not None
    assert "Reindex schedule: At 05:30 (server time, UTC); next run <time" in line.group(1)


def test_a_forms_own_field_keeps_its_own_limits():
    from jobs.forms import ClientForm

    password = _attrs(str(ClientForm()), "password")
    assert "maxlength" not in password, "the raw password is not the 128-character hash column"


def test_a_jobs_page_says_its_saved_schedule_in_words_with_the_next_run(client, admin, destination):
    job = BackupJob.objects.create(name="pages-weekly", destination=destination, schedule="0 3 * * 0")
    client.force_login(admin)
    body = client.get(f"/jobs/{job.pk}/").content.decode()
    line = re.search(r'<p class="small" id="saved-schedule">(.*?)</p>', body, re.S)
    assert line is not None
    assert "Saved schedule: At 03:00, only on Sunday (server time, UTC); next run <time" in line.group(1)
    BackupJob.objects.filter(pk=job.pk).update(enabled=False)
    assert "the job is disabled" in client.get(f"/jobs/{job.pk}/").content.decode()

"""The admin's dashboard (the home page) and a client's home page: which accounts are at risk,
what failed, what runs and what is next, what is stored where, which destinations could not be
reached; all from a fixed number of queries, and nothing of other clients on a client's page."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from destinations import cron
from destinations.models import Destination
from jobs import dashboard
from jobs.models import Account, BackupJob, QueueItem, Snapshot
from tests.support.fixtures_jobs import make_job, run_job

pytestmark = pytest.mark.django_db

DAILY = "0 2 * * *"  # allows 1 day + 1 day + 1 hour


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("dash-admin", password="dash-admin-pw-1")


@pytest.fixture
def destination():
    destination = Destination(name="dash-offsite", host="192.0.2.30", username="backup")
    destination.set_password("pw-1")
    destination.save()
    return destination


def _account(username: str, *, age: timedelta = timedelta(days=30), **fields) -> Account:
    account = Account.objects.create(username=username, home=f"/home/{username}", **fields)
    Account.objects.filter(pk=account.pk).update(created=timezone.now() - age)
    account.refresh_from_db()
    return account


def _job(
    destination, accounts, *, schedule=DAILY, enabled=True, age=timedelta(days=30), **fields
) -> BackupJob:
    job = BackupJob.objects.create(
        name=f"dash-{secrets.token_hex(3)}",
        destination=destination,
        schedule=schedule,
        enabled=enabled,
        **{"accounts_mode": "selected", **fields},  # the accounts given, unless a test says all
    )
    job.accounts.set(accounts)
    BackupJob.objects.filter(pk=job.pk).update(created=timezone.now() - age)
    job.refresh_from_db()
    return job


def _backup(job, account, *, age: timedelta, size: int = 1000, **fields) -> Snapshot:
    return Snapshot.objects.create(
        destination=job.destination,
        account=account,
        account_name=account.username,
        engine="native",
        path=f"{account.username}/{secrets.token_hex(4)}",
        created=timezone.now() - age,
        size=size,
        state=fields.pop("state", "complete"),
        job_uuid=job.uuid,
        **fields,
    )


def _run(job, status, *, age=timedelta(hours=1), **fields) -> QueueItem:
    finished = timezone.now() - age
    return QueueItem.objects.create(
        kind=QueueItem.Kind.BACKUP,
        job=job,
        destination=job.destination,
        title=job.name,
        status=status,
        started=finished - timedelta(minutes=5),
        finished=finished,
        **fields,
    )


def _page(client, admin) -> str:
    client.force_login(admin)
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def _section(body: str, name: str) -> str:
    match = re.search(rf'<section[^>]*id="{name}".*?</section>', body, re.S)
    assert match, f"no {name} section"
    return match.group(0)


def _red_rows(body: str) -> dict[str, str]:
    """username -> problem, for the red rows of the accounts at risk."""
    return dict(
        re.findall(
            r'<tr class="table-danger" data-account="([^"]+)" data-problem="([^"]+)"',
            _section(body, "at-risk"),
        )
    )


# --- accounts at risk ------------------------------------------------------------------------------


def test_an_account_whose_newest_good_backup_is_older_than_its_schedule_allows_is_red(
    client, admin, destination
):
    late, fresh, never, damaged = (_account(f"dash{n}") for n in ("late", "fresh", "never", "damaged"))
    job = _job(destination, [late, fresh, never, damaged])
    _backup(job, late, age=timedelta(days=2, hours=2))  # allowed: 2 days 1 hour
    _backup(job, fresh, age=timedelta(hours=20))
    _backup(job, damaged, age=timedelta(days=3))
    _backup(job, damaged, age=timedelta(hours=1), state="broken")  # not a good backup
    _backup(job, damaged, age=timedelta(hours=2), flags=["missing part"])  # nor is a flagged one
    body = _page(client, admin)
    assert _red_rows(body) == {"dashlate": "overdue", "dashnever": "never", "dashdamaged": "overdue"}
    assert "older than allowed (2 days 1 hour)" in body
    assert "1 scheduled account backed up in time; 3 at risk" in body


def test_a_new_account_is_not_red_before_its_schedule_could_have_backed_it_up(client, admin, destination):
    newcomer = _account("dashnew", age=timedelta(hours=3))
    _job(destination, [newcomer])
    assert _red_rows(_page(client, admin)) == {}


def test_an_account_whose_last_run_failed_after_its_good_backup_is_red_with_the_run_linked(
    client, admin, destination
):
    broke, fine = _account("dashbroke"), _account("dashfine")
    job = _job(destination, [broke, fine])
    _backup(job, broke, age=timedelta(hours=20))
    _backup(job, fine, age=timedelta(hours=20))
    run = _run(
        job,
        "partial",
        result={
            "accounts": [
                {"account": "dashbroke", "status": "failed", "error": "home unreadable"},
                {"account": "dashfine", "status": "completed"},
            ]
        },
    )
    body = _page(client, admin)
    assert _red_rows(body) == {"dashbroke": "failed"}
    assert f'href="/queue/{run.pk}/"' in _section(body, "at-risk")


def test_a_run_that_failed_as_a_whole_makes_all_its_accounts_red(client, admin, destination):
    one, two = _account("dashone"), _account("dashtwo")
    job = _job(destination, [one, two])
    _backup(job, one, age=timedelta(hours=20))
    _run(job, "failed", error="could not connect to 192.0.2.30:21: Connection refused")
    # dashtwo never had a good backup in a month: red for that, the run's failure linked too.
    assert _red_rows(_page(client, admin)) == {"dashone": "failed", "dashtwo": "never"}


def test_accounts_in_no_enabled_scheduled_job_are_shown_as_not_scheduled(client, admin, destination):
    scheduled, by_hand, disabled, _alone = (
        _account(f"dash{n}") for n in ("sched", "byhand", "disabled", "alone")
    )
    job = _job(destination, [scheduled])
    _backup(job, scheduled, age=timedelta(hours=1))
    _job(destination, [by_hand], schedule="")
    _job(destination, [disabled], enabled=False)
    section = _section(_page(client, admin), "at-risk")
    listed = re.findall(r'<ul[^>]*id="not-scheduled".*?</ul>', section, re.S)[0]
    assert set(re.findall(r'data-account="([^"]+)"', listed)) == {"dashbyhand", "dashdisabled", "dashalone"}
    assert _red_rows(section) == {}


def test_an_all_accounts_job_schedules_every_account_on_the_server_but_removed_and_filtered_ones(
    client, admin, destination
):
    """GIVEN a scheduled job over all accounts that excludes dashskip* WHEN the dashboard is
    built THEN only the excluded and the removed accounts are "not scheduled"; the others are
    covered without being listed on the job."""
    _account("dashnew")
    _account("dashskipme")
    gone = _account("dashgone")
    Account.objects.filter(pk=gone.pk).update(removed_at=timezone.now())
    _job(destination, [], accounts_mode="all", exclude=["dashskip*"])
    section = _section(_page(client, admin), "at-risk")
    listed = re.findall(r'<ul[^>]*id="not-scheduled".*?</ul>', section, re.S)[0]
    assert set(re.findall(r'data-account="([^"]+)"', listed)) == {"dashskipme", "dashgone"}


# --- failures, runs, stored bytes, destinations ----------------------------------------------------


def test_failures_of_the_last_24_hours_are_listed_with_links(client, admin, destination):
    job = _job(destination, [_account("dashfail")])
    failed = _run(job, "failed", age=timedelta(hours=2), error="the home folder is missing")
    partial = _run(job, "partial", age=timedelta(hours=3), error="1 of 2 accounts failed")
    old = _run(job, "failed", age=timedelta(hours=30), error="yesterday's failure")
    ok = _run(job, "completed", age=timedelta(hours=1))
    section = _section(_page(client, admin), "failures")
    assert f'href="/queue/{failed.pk}/"' in section
    assert "the home folder is missing" in section
    assert f'href="/queue/{partial.pk}/"' in section
    assert "Partially completed" in section
    assert f"/queue/{old.pk}/" not in section
    assert "yesterday" not in section
    assert f"/queue/{ok.pk}/" not in section


def test_runs_in_progress_show_their_progress_and_the_panel_refreshes(client, admin, destination):
    job = _job(destination, [_account("dashrun")])
    running = QueueItem.objects.create(
        kind="backup", job=job, status="running", progress=42, started=timezone.now(), title=job.name
    )
    pending = QueueItem.objects.create(kind="reindex", destination=destination, status="pending")
    done = _run(job, "completed")
    section = _section(_page(client, admin), "in-progress")
    assert f'data-item="{running.pk}" data-status="running"' in section
    assert 'aria-valuenow="42"' in section
    assert "42%" in section
    assert f'data-item="{pending.pk}"' in section
    assert f'data-item="{done.pk}"' not in section
    assert section.index(f'data-item="{running.pk}"') < section.index(f'data-item="{pending.pk}"')
    assert 'hx-get="/dashboard/runs/"' in section
    QueueItem.objects.filter(pk=running.pk).update(progress=77)
    assert 'aria-valuenow="77"' in client.get("/dashboard/runs/").content.decode()


def test_the_next_scheduled_runs_are_listed_soonest_first(client, admin, destination, settings):
    settings.TIME_ZONE = "UTC"
    hourly = _job(destination, [], schedule="15 * * * *")
    daily = _job(destination, [], schedule=DAILY)
    off = _job(destination, [], enabled=False)
    section = _section(_page(client, admin), "next-runs")
    for job in (hourly, daily):
        moment = cron.next_run(job.schedule, timezone.now())
        assert moment is not None
        assert f'<time datetime="{moment.isoformat()}"' in section
    assert section.index(f'data-job="{hourly.pk}"') < section.index(f'data-job="{daily.pk}"')
    assert f'data-job="{off.pk}"' not in section


def test_stored_bytes_are_summed_per_destination_and_per_account(client, admin, destination):
    other = Destination.objects.create(name="dash-second", host="192.0.2.31", username="backup")
    big, small = _account("dashbig"), _account("dashsmall")
    job, job2 = _job(destination, [big, small]), _job(other, [big])
    _backup(job, big, age=timedelta(days=1), size=3 * 1024**3)
    _backup(job, big, age=timedelta(hours=1), size=1024**3)
    _backup(job2, big, age=timedelta(hours=1), size=512 * 1024**2)
    _backup(job, small, age=timedelta(hours=1), size=2048)
    Snapshot.objects.create(
        destination=other, account_name="orphan", engine="cpanel", path="2026-01-01/accounts/orphan.tar.gz",
        created=timezone.now(), size=100, state="complete",
    )  # fmt: skip
    body = _page(client, admin)
    by_destination = _section(body, "stored-by-destination")
    assert re.search(rf'data-destination="{destination.pk}">.*?>3</td>.*?4.0 GiB', by_destination, re.S)
    assert re.search(
        rf'data-destination="{other.pk}">.*?>2</td>.*?"536871012 bytes">512.0 MiB', by_destination, re.S
    )
    by_account = _section(body, "stored-by-account")
    assert re.search(r'data-account="dashbig">.*?>3</td>.*?4.5 GiB', by_account, re.S)
    assert re.search(r'data-account="dashsmall">.*?>1</td>.*?2.0 KiB', by_account, re.S)
    assert "not an account here" in by_account  # the orphan
    assert by_account.index("dashbig") < by_account.index("dashsmall") < by_account.index("orphan")


def test_a_destination_whose_validate_failed_is_listed_as_unreachable(client, admin, destination):
    Destination.objects.filter(pk=destination.pk).update(validated_ok=False, validated_at=timezone.now())
    fine = Destination.objects.create(
        name="dash-fine", host="192.0.2.32", username="backup", validated_ok=True
    )
    section = _section(_page(client, admin), "unreachable")
    assert f'data-destination="{destination.pk}"' in section
    assert "Validate failed" in section
    assert f'data-destination="{fine.pk}"' not in section


def test_a_destination_whose_run_could_not_log_in_is_listed_with_the_error(
    client, admin, native_destination, home_account
):
    """GIVEN a real pure-ftpd that refuses the destination's password, WHEN a backup runs, THEN
    the run fails at the login and the dashboard lists the destination with the run's error;
    a run that failed for an account's own reason does not list its destination."""
    native_destination.set_password("not-the-password")
    native_destination.save()
    job = make_job(native_destination, home_account, schedule=DAILY)
    item = run_job(job)
    assert item.status == "failed"
    assert "refused the username or password" in item.error
    elsewhere = Destination.objects.create(name="dash-elsewhere", host="192.0.2.33", username="backup")
    _run(
        _job(elsewhere, [_account("dashhome")]),
        "failed",
        error="dashhome: [Errno 2] No such file or directory",
    )
    section = _section(_page(client, admin), "unreachable")
    assert f'data-destination="{native_destination.pk}"' in section
    assert f'href="/queue/{item.pk}/"' in section
    assert "refused the username or password" in section
    assert f'data-destination="{elsewhere.pk}"' not in section


# --- the query bound -------------------------------------------------------------------------------


def _world(destination, accounts: int, jobs: int = 4) -> None:
    made = [_account(f"dashq{n:03d}") for n in range(accounts)]
    for j in range(jobs):
        job = _job(destination, made[j::jobs], schedule=f"{j} 2 * * *")
        for n, account in enumerate(made[j::jobs]):
            _backup(job, account, age=timedelta(days=3 if n % 3 == 0 else 0, hours=1))
            _backup(job, account, age=timedelta(days=1), state="broken")
        _run(job, "partial", result={"accounts": [{"account": made[j].username, "status": "failed"}]})
        _run(
            job,
            "failed",
            error="could not connect to 192.0.2.30:21: Connection refused",
            age=timedelta(hours=5),
        )
    QueueItem.objects.create(kind="backup", status="running", progress=10, destination=destination)


def _count_queries(client, admin) -> tuple[int, str]:
    client.force_login(admin)
    with CaptureQueriesContext(connection) as queries:
        body = client.get("/").content.decode()
    return len(queries), body


def test_the_dashboard_takes_the_same_few_queries_for_8_or_60_accounts(client, admin, destination):
    _world(destination, 8)
    few, body = _count_queries(client, admin)
    assert len(_red_rows(body)) >= 3
    Account.objects.all().delete()
    Snapshot.objects.all().delete()
    _world(destination, 60)
    many, body = _count_queries(client, admin)
    assert len(re.findall(r'data-account="dashq\d+" data-problem', body)) >= 20
    assert many == few, f"{few} queries with 8 accounts, {many} with 60"
    assert many <= 20, many


def test_building_the_dashboard_for_60_accounts_takes_at_most_12_queries(
    destination, django_assert_max_num_queries
):
    _world(destination, 60)
    with django_assert_max_num_queries(12):
        board = dashboard.build()
    assert len(board.stored_by_account) == 60
    assert len(board.unreachable) == 1


# --- who sees it -----------------------------------------------------------------------------------


def test_a_client_is_sent_to_their_own_accounts_and_cannot_open_the_admin_panels(client, django_user_model):
    alice = django_user_model.objects.create_user("dashalice", password="alice-pw-1234")
    client.force_login(alice)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/mine/"
    assert client.get("/dashboard/runs/").status_code == 404


def test_a_clients_home_links_the_newest_restorable_backup_of_each_account_and_nothing_of_others(
    client, django_user_model, destination
):
    alice = django_user_model.objects.create_user("dashalice", password="alice-pw-1234")
    bob = django_user_model.objects.create_user("dashbob", password="bob-pw-1234")
    site, shop, theirs = (
        _account("dashalicesite", owner=alice),
        _account("dashaliceshop", owner=alice),
        _account("dashbobsite", owner=bob),
    )
    job = _job(destination, [site, shop, theirs])
    older = _backup(job, site, age=timedelta(days=2))
    newest = _backup(job, site, age=timedelta(days=1))
    broken = _backup(job, site, age=timedelta(hours=1), state="broken")
    flagged = _backup(job, site, age=timedelta(hours=2), flags=["damaged"])
    bobs = _backup(job, theirs, age=timedelta(hours=1))
    client.force_login(alice)
    body = client.get("/mine/").content.decode()
    card = re.search(r'data-account="dashalicesite".*?</div></div></div>', body, re.S).group(0)
    assert f'href="/backups/{newest.pk}/"' in card
    for other in (older, broken, flagged):
        assert f"/backups/{other.pk}/" not in body
    shop_card = re.search(r'data-account="dashaliceshop".*?</div></div></div>', body, re.S).group(0)
    assert "No restorable backup yet." in shop_card
    assert "dashbob" not in body
    assert f"/backups/{bobs.pk}/" not in body


def test_an_admin_lands_on_the_dashboard_and_anonymous_visitors_on_the_login(client, admin):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    body = _page(client, admin)
    assert '<h1 class="h3 mb-3">Dashboard</h1>' in body
    assert "<script>" not in body  # the CSP forbids inline scripts


# --- what a schedule allows ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "interval"),
    [
        ("0 2 * * *", timedelta(days=1)),
        ("*/15 * * * *", timedelta(minutes=15)),
        ("0 2,14 * * *", timedelta(hours=12)),
        ("0 3 * * 0", timedelta(days=7)),
        # Weekdays only: the weekend's gap counts, whatever day it is now.
        ("0 2 * * 1-5", timedelta(days=3)),
    ],
)
def test_a_schedules_interval_is_its_longest_gap_between_consecutive_runs(expression, interval, settings):
    settings.TIME_ZONE = "UTC"
    for day in range(7):  # 2026-07-06 is a Monday
        now = datetime(2026, 7, 6 + day, 12, 0, tzinfo=UTC)
        assert dashboard.schedule_interval(expression, now) == interval, (expression, now)
    assert dashboard.allowance(interval) == interval * 2 + timedelta(hours=1)

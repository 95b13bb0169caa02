"""Notification targets through the API and the pages: validated with Apprise, secrets
encrypted at rest and never shown back, admins only."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from jobs.models import NotificationTarget

pytestmark = [pytest.mark.django_db]

URL = "/api/v1/notification-targets/"
SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
HOOK = "json://hooks.example:8443/backupsite?+X-Token=tok-9f8e7d6c5b4a"


@pytest.fixture
def admin_api(django_user_model) -> APIClient:
    admin = django_user_model.objects.create_user("nt-admin", password="pw", is_staff=True)
    client = APIClient()
    client.force_authenticate(admin)
    return client


def test_a_target_is_created_with_exactly_its_fields_and_its_secret_never_comes_back(admin_api) -> None:
    """
    GIVEN an Apprise Slack URL whose path holds the webhook tokens
    WHEN an admin creates a target with it
    THEN the answer has exactly id, name, url, events, enabled, the url redacted; the database
         holds it encrypted (the tokens appear nowhere in the row in clear)
    """
    response = admin_api.post(
        URL, {"name": "team", "url": SLACK, "events": ["backup_failed", "daily_summary"]}, format="json"
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert set(data) == {"id", "name", "url", "events", "enabled"}
    assert data["events"] == ["backup_failed", "daily_summary"]
    assert data["enabled"] is True
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in data["url"]
    assert data["url"].startswith("slack://")
    target = NotificationTarget.objects.get(pk=data["id"])
    assert target.url == SLACK
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in target.url_encrypted + target.url_display
    listed = admin_api.get(URL).json()
    assert set(listed) == {"count", "next", "previous", "results"}
    assert listed["results"] == [data]
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in admin_api.get(f"{URL}{data['id']}/").content.decode()


def test_custom_header_secrets_of_a_json_webhook_are_redacted(admin_api) -> None:
    data = admin_api.post(URL, {"name": "hook", "url": HOOK, "events": []}, format="json").json()
    assert "tok-9f8e7d6c5b4a" not in data["url"]
    assert data["url"].startswith("json://hooks.example:8443/backupsite")


def test_sending_the_redacted_url_back_keeps_the_stored_one_and_a_new_url_replaces_it(admin_api) -> None:
    created = admin_api.post(URL, {"name": "team", "url": SLACK, "events": []}, format="json").json()
    detail = f"{URL}{created['id']}/"

    kept = admin_api.patch(detail, {"url": created["url"], "events": ["backup_partial"]}, format="json")
    assert kept.status_code == 200, kept.json()
    assert NotificationTarget.objects.get(pk=created["id"]).url == SLACK
    assert admin_api.patch(detail, {"enabled": False}, format="json").json()["enabled"] is False
    assert NotificationTarget.objects.get(pk=created["id"]).url == SLACK

    replaced = admin_api.patch(detail, {"url": "mailto:ops@example.com"}, format="json").json()
    assert replaced["url"] == "ops@example.com"
    assert NotificationTarget.objects.get(pk=created["id"]).url == "mailto:ops@example.com"
    assert admin_api.delete(detail).status_code == 204
    assert not NotificationTarget.objects.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("gopher://example.com/x", "Apprise does not know the scheme gopher://"),
        ("slack://abc", "not a valid Slack URL"),
        ("json://", "not a valid JSON URL"),
        ("bob@", "is not an email address"),
        ("just words", "one line without spaces"),
        ("example.com/hook", "Enter an email address, or an Apprise URL"),
    ],
)
def test_a_url_apprise_cannot_use_is_refused_with_a_field_error(admin_api, url, message) -> None:
    response = admin_api.post(URL, {"name": "x", "url": url, "events": []}, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()["url"]), response.json()
    assert not NotificationTarget.objects.exists()


def test_unknown_events_are_refused(admin_api) -> None:
    response = admin_api.post(
        URL,
        {"name": "x", "url": "ops@example.com", "events": ["backup_failed", "coffee_ready"]},
        format="json",
    )
    assert response.status_code == 400
    assert "events" in response.json()
    assert not NotificationTarget.objects.exists()


def test_clients_and_strangers_cannot_see_or_change_targets(django_user_model) -> None:
    NotificationTarget.objects.create(name="t", url_encrypted="x", url_display="ops@example.com")
    client_user = django_user_model.objects.create_user("nt-client", password="pw")
    api = APIClient()
    assert api.get(URL).status_code in (401, 403)
    api.force_authenticate(client_user)
    assert api.get(URL).status_code == 404
    assert api.post(URL, {"name": "y", "url": "a@example.com"}, format="json").status_code == 404


def test_the_page_form_keeps_the_stored_url_when_the_shown_one_is_left(client, django_user_model) -> None:
    admin = django_user_model.objects.create_user("nt-admin2", password="pw", is_staff=True)
    client.force_login(admin)
    response = client.post(
        "/notifications/new/", {"name": "team", "url": SLACK, "events": ["backup_failed"], "enabled": "on"}
    )
    assert response.status_code == 302
    target = NotificationTarget.objects.get()
    page = client.get(f"/notifications/{target.pk}/").content.decode()
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in page
    assert target.url_display in page
    client.post(
        f"/notifications/{target.pk}/",
        {"name": "team", "url": target.url_display, "events": ["backup_failed", "reindex_failed"]},
    )
    target.refresh_from_db()
    assert target.url == SLACK
    assert target.events == ["backup_failed", "reindex_failed"]
    assert target.enabled is False  # the box was not ticked
    listing = client.get("/notifications/").content.decode()
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in listing
    assert "Send test" in listing
    refused = client.post(f"/notifications/{target.pk}/", {"name": "team", "url": "nope://x", "events": []})
    assert "Apprise does not know the scheme nope://" in refused.content.decode()
    target.refresh_from_db()
    assert target.url == SLACK


@pytest.mark.parametrize(
    "value", ["ftp://panel.example", "panel.example", "https://", "https://a b", "https://x/?q=1"]
)
def test_a_base_url_that_is_not_an_http_address_stops_the_program(monkeypatch, value) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from backupsite.env import env_url

    monkeypatch.setenv("BACKUPSITE_URL", value)
    with pytest.raises(ImproperlyConfigured, match="BACKUPSITE_URL"):
        env_url("BACKUPSITE_URL", "http://127.0.0.1:8000")


def test_base_url_and_summary_time_parse(monkeypatch) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from backupsite.env import env_time, env_url

    monkeypatch.setenv("BACKUPSITE_URL", "https://panel.example/backups/")
    assert env_url("BACKUPSITE_URL", "http://127.0.0.1:8000") == "https://panel.example/backups"
    monkeypatch.delenv("BACKUPSITE_URL")
    assert env_url("BACKUPSITE_URL", "http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    monkeypatch.setenv("BACKUPSITE_DAILY_SUMMARY_AT", "06:30")
    assert env_time("BACKUPSITE_DAILY_SUMMARY_AT", (7, 0)) == (6, 30)
    monkeypatch.setenv("BACKUPSITE_DAILY_SUMMARY_AT", "25:00")
    with pytest.raises(ImproperlyConfigured, match="BACKUPSITE_DAILY_SUMMARY_AT"):
        env_time("BACKUPSITE_DAILY_SUMMARY_AT", (7, 0))


def test_the_test_action_answers_whether_the_message_got_through(admin_api, smtp_server, webhook) -> None:
    """
    GIVEN an email target, a webhook target and a webhook target nothing listens on
    WHEN an admin asks each for a test message through the API
    THEN the first two arrive and answer ok; the dead one answers why, without its token
    """
    from tests.support.fixtures_notify import free_port

    mail = admin_api.post(URL, {"name": "mail", "url": "ops@example.com"}, format="json").json()
    hook = admin_api.post(URL, {"name": "hook", "url": webhook.url}, format="json").json()
    dead_url = f"json://127.0.0.1:{free_port()}/x?+Authorization=Bearer-abcdef987654"
    dead = admin_api.post(URL, {"name": "dead", "url": dead_url}, format="json").json()

    assert admin_api.post(f"{URL}{mail['id']}/test/").json() == {"ok": True, "detail": "sent"}
    assert admin_api.post(f"{URL}{hook['id']}/test/").json() == {"ok": True, "detail": "sent"}
    answer = admin_api.post(f"{URL}{dead['id']}/test/").json()
    assert answer["ok"] is False
    assert answer["detail"]
    assert "abcdef987654" not in answer["detail"]
    assert [m["To"] for m in smtp_server.wait_for(1)] == ["ops@example.com"]
    assert "Test message for hook" in webhook.wait_for(1)[0]["title"]

"""Content-Security-Policy: every response carries it, and no page needs more than it allows
(no inline script, no inline event handler, no javascript: URL, no style attribute)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.support import REPO
from tests.support.pages import page_urls, patterns, showcase

pytestmark = pytest.mark.django_db

TEMPLATES = REPO / "templates"


def policy(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"{response.request['PATH_INFO']} answered {response.status_code} without a CSP"
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


class InlineCode(HTMLParser):
    """Collects what the policy would refuse: inline scripts, on* handlers, javascript: URLs,
    style attributes and <style> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script" and "src" not in names and names.get("type") != "application/json":
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{tag} {name}= handler")
            if name == "style":
                self.found.append(f"{tag} style attribute")
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.found.append(f"{tag} {name}=javascript:")


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.found


def test_the_policy_allows_only_the_panels_own_scripts_and_styles(client):
    directives = policy(client.get("/login/"))
    assert directives["default-src"] == ["'none'"]
    assert directives["script-src"] == ["'self'"], "no nonce unless a page asks for one"
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert not any("unsafe" in value for values in directives.values() for value in values)
    response = client.get("/login/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.parametrize("staff", [True, False], ids=["admin", "client"])
def test_every_page_carries_the_policy_and_has_no_inline_code(client, staff):
    """
    GIVEN one object of every kind
    WHEN an admin, then a client, opens every page of the panel
    THEN every answer has the header, and no page holds code the header would refuse
    """
    world = showcase()
    client.force_login(world.admin if staff else world.client)
    urls = page_urls(world, staff=staff)
    assert len(urls) >= (25 if staff else 12)
    for url in urls:
        response = client.get(url, follow=True)
        assert response.status_code == (404 if url == "/no-such-page/" else 200), url
        policy(response)
        found = inline_code(response.content.decode())
        assert not found, f"{url}: {found}"


def test_every_url_answers_with_the_policy_whatever_the_method(client):
    world = showcase()
    api = APIClient()
    api.force_authenticate(world.admin)
    client.force_login(world.admin)
    checked = 0
    for name, kwargs in patterns():
        if name.startswith("admin:") or kwargs - {"pk"}:
            continue
        url = reverse(name, kwargs={"pk": world.snapshot.pk} if kwargs else None)
        agent = api if url.startswith("/api/") else client
        for method in ("get", "post"):
            policy(getattr(agent, method)(url))
            checked += 1
    policy(client.get("/admin/"))
    assert checked >= 60


def test_no_template_holds_inline_script_or_style():
    """The templates themselves, including the partials htmx swaps in and branches the page
    walk may not reach."""
    offenders = {}
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text()
        found = inline_code(re.sub(r"{#.*?#}|{%.*?%}|{{.*?}}", "x", text, flags=re.S))
        if found:
            offenders[str(template.relative_to(TEMPLATES))] = found
    assert not offenders


def test_the_nonce_joins_the_header_only_for_a_page_that_uses_it(rf):
    from csp.middleware import CSPMiddleware
    from django.http import HttpResponse
    from django.template import Context, Template

    def view(request):
        html = Template('<script nonce="{{ nonce }}">1</script>').render(
            Context({"nonce": request.csp_nonce})
        )
        return HttpResponse(html)

    middleware = CSPMiddleware(view)
    request = rf.get("/")
    response = middleware(request)
    nonce = re.search(r'nonce="([^"]+)"', response.content.decode()).group(1)
    assert f"'nonce-{nonce}'" in response.headers["Content-Security-Policy"]
    plain = CSPMiddleware(lambda request: HttpResponse("<p>no script</p>"))(rf.get("/"))
    assert "nonce" not in plain.headers["Content-Security-Policy"]

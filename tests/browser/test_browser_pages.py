"""In Chromium, desktop and phone: Validate answers where the admin is looking, a refused
character is said, the search field shows its whole placeholder."""

from __future__ import annotations

import pytest
from django.utils import timezone

from destinations import listing
from destinations.models import Destination
from jobs.models import Account, Snapshot
from tests.support.fixtures_browser import login

pytestmark = [pytest.mark.browser, pytest.mark.peer, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(params=sorted(VIEWPORTS))
def sized_page(request, browser):
    context = browser.new_context(viewport=VIEWPORTS[request.param])
    context.set_default_timeout(15000)
    page = context.new_page()
    yield page
    context.close()


IN_VIEWPORT_JS = """(selector) => {
  const el = document.querySelector(selector);
  if (!el) return false;
  const r = el.getBoundingClientRect();
  return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight;
}"""


def test_validates_answer_is_focused_and_in_view_and_a_saved_destination_remembers_it(
    sized_page, live_server, django_user_model, pure_ftpd, ftp_dir, redis_settings
):
    page = sized_page
    django_user_model.objects.create_superuser("pages-admin", password="pages-admin-pw-1")
    login(page, live_server, "pages-admin", "pages-admin-pw-1")
    page.goto(f"{live_server.url}/destinations/new/")
    page.fill("#id_name", "Pages pure-ftpd")
    page.fill("#id_directory", f"{ftp_dir}/backups")
    page.fill("#id_host", pure_ftpd.host)
    page.fill("#id_port", str(pure_ftpd.port))
    page.fill("#id_username", pure_ftpd.user)
    page.fill("#id_password", pure_ftpd.password)
    page.fill("#id_timeout", "10")
    page.uncheck("#id_ssl")

    page.click("#validate-button")
    page.wait_for_selector("#validate-summary.alert-success")
    # The scroll may be smooth (Bootstrap, unless the user asks for reduced motion): wait for it.
    page.wait_for_function(IN_VIEWPORT_JS, arg="#validate-summary", timeout=3000)
    assert page.evaluate("document.activeElement && document.activeElement.id") == "validate-summary"
    below = page.evaluate(
        """() => document.getElementById('validate-summary').getBoundingClientRect().top
                 > document.getElementById('validate-button').getBoundingClientRect().top"""
    )
    assert below, "under the button, not at the top of the page"

    page.click("#save-button")
    page.wait_for_load_state("networkidle")
    destination = Destination.objects.get()
    assert destination.validated_ok is True, "saving the settings just validated keeps the result"
    state = page.inner_text("#validated-state")
    assert "Last validated" in state
    assert "passed" in state

    page.fill("#id_directory", f"{ftp_dir}/other")  # not saved: the saved result stays
    page.click("#validate-button")
    page.wait_for_selector("#validate-summary")
    page.wait_for_function(IN_VIEWPORT_JS, arg="#validate-summary", timeout=3000)
    page.goto(f"{live_server.url}/destinations/")
    assert "passed" in page.inner_text(".destination-validated")


def test_a_character_beyond_the_limit_is_said_beside_the_field(sized_page, live_server, django_user_model):
    page = sized_page
    django_user_model.objects.create_superuser("pages-admin", password="pages-admin-pw-1")
    login(page, live_server, "pages-admin", "pages-admin-pw-1")
    page.goto(f"{live_server.url}/destinations/new/")
    assert page.get_attribute("#id_port", "min") == "1"
    assert page.get_attribute("#id_port", "max") == "65535"
    page.locator("#id_name").press_sequentially("n" * 41)
    assert len(page.input_value("#id_name")) == 40
    note = page.locator("#id_name-limit")
    assert note.is_visible()
    assert "At most 40 characters" in note.inner_text()
    page.locator("#id_name").press("Backspace")
    assert note.inner_text() == "", "the note goes once there is room again"
    # A paste that does not fit says so too (the browser keeps only what fits).
    page.evaluate(
        """() => {
          const input = document.getElementById('id_host');
          input.focus();
          const data = new DataTransfer();
          data.setData('text/plain', 'h'.repeat(300));
          input.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true}));
        }"""
    )
    assert "At most 255 characters" in page.inner_text("#id_host-limit")


def test_the_search_field_shows_its_whole_placeholder(sized_page, live_server, django_user_model):
    page = sized_page
    django_user_model.objects.create_superuser("pages-admin", password="pages-admin-pw-1")
    destination = Destination(name="pages-search", host="192.0.2.30", username="backup")
    destination.set_password("pw")
    destination.save()
    account = Account.objects.create(username="pagessearch")
    snapshot = Snapshot.objects.create(
        destination=destination,
        account=account,
        account_name="pagessearch",
        engine="native",
        path="pagessearch/1",
        created=timezone.now(),
        state="complete",
        listing_root=listing.build([listing.Entry(path="index.html", type="file", size=10, mtime=1)]),
    )
    login(page, live_server, "pages-admin", "pages-admin-pw-1")
    page.goto(f"{live_server.url}/backups/{snapshot.pk}/files/")
    fits = page.locator("#search").evaluate(
        """(input) => {
          const style = getComputedStyle(input);
          const ctx = document.createElement('canvas').getContext('2d');
          ctx.font = style.font;
          const text = ctx.measureText(input.placeholder).width;
          const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
          return [text, room];
        }"""
    )
    text, room = fits
    assert text <= room, f"placeholder needs {text:.0f} px, the field has {room:.0f} px"

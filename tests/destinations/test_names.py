"""File names that are not UTF-8: browsing, search, versions, the files API, restore and download.

A home (and a cPanel archive) holds a folder with a Latin-1 name, files named with a Latin-1
byte and with an invalid UTF-8 sequence, a symlink whose target is not UTF-8, and names that
spell the panel's escape form literally (``caf\\xe9.txt`` in ten ASCII characters), which must
stay a different file from the Latin-1 one everywhere. Backups go to a real pure-ftpd.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from jobs.models import Account, QueueItem, Snapshot
from tests.support.cpanel_archives import make_account_archive
from tests.support.fixtures_restore import (
    HOME_OWNER,
    chown_tree,
    cpanel_folder,
    index_cpanel,
    make_native_backup,
    run_item,
)

pytest_plugins = ["tests.support.fixtures_restore"]
pytestmark = [pytest.mark.peer, pytest.mark.django_db]

FOLDER = b"archiv-\xe4"  # Latin-1 "archiv-ä"
FOLDER_LOOKALIKE = b"archiv-\\xe4"  # the escape form of FOLDER, as ASCII characters
LATIN1 = b"caf\xe9.txt"
INVALID = b"bad-\xc3\x28-\xff.txt"  # a lead byte without its continuation, and 0xff
LOOKALIKE = b"caf\\xe9.txt"  # ten ASCII characters: how LATIN1 is shown
SUB = b"sub-\xff"
LINK = b"link-\xe9"

# home-relative raw name -> content (None: a folder; ("l", target): a symlink)
TREE: dict[bytes, Any] = {
    FOLDER: None,
    FOLDER + b"/" + LATIN1: b"latin-1 name\n",
    FOLDER + b"/" + INVALID: b"invalid utf-8 sequence in the name\n",
    FOLDER + b"/" + LOOKALIKE: b"a backslash, x, e and 9 in the name\n",
    FOLDER + b"/" + SUB: None,
    FOLDER + b"/" + SUB + b"/deep.txt": b"deep inside\n",
    FOLDER + b"/" + LINK: ("l", LATIN1),
    FOLDER_LOOKALIKE: None,
    FOLDER_LOOKALIKE + b"/other.txt": b"the folder named with a backslash\n",
}

# Two Maildirs: a mailbox, and a folder in its place whose name is not UTF-8 (no email address).
MAIL_DOMAIN = b"mail/nm-example.org"
MAILBOXES: dict[bytes, Any] = {
    MAIL_DOMAIN: None,
    MAIL_DOMAIN + b"/info": None,
    MAIL_DOMAIN + b"/info/cur": None,
    MAIL_DOMAIN + b"/info/cur/1.eml": b"Subject: a mailbox\n\nbody\n",
    MAIL_DOMAIN + b"/b\xe9": None,
    MAIL_DOMAIN + b"/b\xe9/cur": None,
    MAIL_DOMAIN + b"/b\xe9/cur/1.eml": b"Subject: a folder with a Latin-1 name\n\nbody\n",
}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def shown(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def write_tree(root: Path, tree: dict[bytes, Any]) -> None:
    base = os.fsencode(root)
    for rel, content in tree.items():
        path = os.path.join(base, rel)
        if content is None:
            os.mkdir(path)
        elif isinstance(content, tuple):
            os.symlink(content[1], path)
        else:
            with open(path, "wb") as handle:
                handle.write(content)


def exact_tree(root: Path | bytes, prefix: bytes = b"") -> dict[bytes, Any]:
    """Everything under `root` by raw name (os.listdir with bytes), in TREE's form."""
    found: dict[bytes, Any] = {}
    base = root if isinstance(root, bytes) else os.fsencode(root)
    for name in os.listdir(base):
        path = os.path.join(base, name)
        rel = prefix + name
        if os.path.islink(path):
            found[rel] = ("l", os.readlink(path))
        elif os.path.isdir(path):
            found[rel] = None
            found.update(exact_tree(path, rel + b"/"))
        else:
            with open(path, "rb") as handle:
                found[rel] = handle.read()
    return found


def under(tree: dict[bytes, Any], *tops: bytes) -> dict[bytes, Any]:
    return {k: v for k, v in tree.items() if any(k == t or k.startswith(t + b"/") for t in tops)}


@pytest.fixture
def owner(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(f"nm-client-{secrets.token_hex(3)}", password="pw-12345678")


@pytest.fixture
def names_account(db: Any, tmp_path: Path, owner: Any) -> Account:
    home = tmp_path / "homes" / f"nm{secrets.token_hex(3)}"
    (home / "public_html").mkdir(parents=True)
    (home / "public_html" / "index.html").write_text("<h1>home</h1>\n")
    write_tree(home, TREE)
    (home / "mail").mkdir()
    write_tree(home, MAILBOXES)
    chown_tree(home, HOME_OWNER)
    return Account.objects.create(username=home.name, home=str(home), owner=owner)


@pytest.fixture
def native_backup(restore_native_destination: Any, names_account: Account) -> Snapshot:
    return make_native_backup(restore_native_destination, names_account).snapshot


@pytest.fixture
def api(owner: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(owner)
    return client


def files(api: APIClient, snapshot: Snapshot, **params: str) -> Any:
    return api.get(f"/api/v1/snapshots/{snapshot.pk}/files/", params)


def raw_paths(results: list[dict[str, Any]]) -> dict[bytes, dict[str, Any]]:
    """The entries of a files answer by the raw bytes of their path, as a client rebuilds them."""
    out = {}
    for row in results:
        raw = (
            base64.urlsafe_b64decode(row["path_b64"] + "=" * (-len(row["path_b64"]) % 4))
            if "path_b64" in row
            else row["path"].encode()
        )
        out[raw] = row
    return out


def queued(api: APIClient, snapshot: Snapshot, what: str, body: dict[str, Any]) -> QueueItem:
    response = api.post(f"/api/v1/snapshots/{snapshot.pk}/{what}/", body, format="json")
    assert response.status_code == 202, response.content
    return QueueItem.objects.get(pk=response.json()["id"])


def downloaded_tree(client: Any, item: QueueItem, tmp_path: Path) -> dict[bytes, Any]:
    """The prepared .tar.gz fetched as its owner would, unpacked by GNU tar."""
    response = client.get(item.result["url"])
    assert response.status_code == 200
    archive = tmp_path / "download.tar.gz"
    archive.write_bytes(b"".join(response.streaming_content))
    out = tmp_path / "unpacked"
    out.mkdir()
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(out)], check=True)
    return exact_tree(out)


# --- native backups -------------------------------------------------------------------------


def test_files_page_browses_a_folder_whose_name_is_not_utf8(
    client: Any, owner: Any, native_backup: Snapshot
) -> None:
    """
    GIVEN a backup whose home holds a Latin-1 folder name beside a folder named with its
          escape form literally
    WHEN the client opens the files page, follows the folder's link and selects a file
    THEN the folder shows with its byte marked, its link carries the exact bytes (path_b64),
         its files list readably, and the literal look-alike stays a different folder
    """
    client.force_login(owner)
    url = reverse("jobs:snapshot-files", args=[native_backup.pk])
    root = client.get(url)
    assert root.status_code == 200
    html = root.content.decode()
    assert 'archiv-<span class="raw-byte" title="a byte that is not UTF-8">\\xe4</span>' in html
    assert f'href="?path_b64={b64(FOLDER)}"' in html
    assert 'href="?path=archiv-%5Cxe4"' in html  # the look-alike is text: carried as it is

    inside = client.get(url, {"path_b64": b64(FOLDER)})
    assert inside.status_code == 200
    html = inside.content.decode()
    assert 'caf<span class="raw-byte" title="a byte that is not UTF-8">\\xe9</span>.txt' in html
    assert "caf\\xe9.txt" in html  # the look-alike, plain
    assert 'bad-<span class="raw-byte" title="a byte that is not UTF-8">\\xc3</span>(-' in html
    boxes = dict(
        (unescape(value), name)
        for name, value in re.findall(r'type="checkbox" name="(paths(?:_b64)?)" value="([^"]*)"', html)
    )
    assert boxes[b64(FOLDER + b"/" + LATIN1)] == "paths_b64"
    assert boxes[b64(FOLDER + b"/" + INVALID)] == "paths_b64"
    assert f'<input type="hidden" name="path_b64" value="{b64(FOLDER)}">' in html
    assert f'href="?path_b64={b64(FOLDER + b"/" + SUB)}"' in html

    # The display form sent back as text names the look-alike, never the Latin-1 folder.
    literal = client.get(url, {"path": shown(FOLDER)})
    assert literal.status_code == 200
    assert "other.txt" in literal.content.decode()
    assert "deep" not in literal.content.decode()
    assert "sub-" not in literal.content.decode()
    assert client.get(url, {"path_b64": "not*base64"}).status_code == 404

    # The page's own form restores what its checkboxes name, through the page that asks first.
    restore_url = reverse("jobs:snapshot-restore", args=[native_backup.pk])
    asked = client.post(restore_url, {"paths_b64": [b64(FOLDER + b"/" + LATIN1)], "target": "new_folder"})
    assert asked.status_code == 200
    html = asked.content.decode()
    assert "1 file (archiv-\\xe4/caf\\xe9.txt) into a new folder" in html
    hidden = re.findall(r'<input type="hidden" name="(paths(?:_b64)?)" value="([^"]*)">', html)
    assert hidden == [("paths_b64", b64(FOLDER + b"/" + LATIN1))]
    response = client.post(
        restore_url,
        {"paths_b64": [value for _name, value in hidden], "target": "new_folder", "confirmed": "1"},
    )
    assert response.status_code == 302
    item = run_item(QueueItem.objects.get(kind=QueueItem.Kind.RESTORE))
    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    assert exact_tree(Path(item.result["folder"])) == {
        FOLDER: None,
        FOLDER + b"/" + LATIN1: TREE[FOLDER + b"/" + LATIN1],
    }
    page = client.get(reverse("jobs:queue-detail", args=[item.pk]))
    assert page.status_code == 200


def test_a_refused_restore_form_ticks_names_that_are_not_utf8_again(
    client: Any, owner: Any, native_backup: Snapshot
) -> None:
    """GIVEN the client ticked the Latin-1 file and a path the backup lacks WHEN the restore is
    refused THEN the files page shows the error with the Latin-1 file still ticked."""
    client.force_login(owner)
    url = reverse("jobs:snapshot-files", args=[native_backup.pk])
    back = f"{url}?path_b64={b64(FOLDER)}"
    response = client.post(
        reverse("jobs:snapshot-restore", args=[native_backup.pk]),
        {"paths_b64": [b64(FOLDER + b"/" + LATIN1)], "paths": ["missing.txt"], "back": back},
    )
    assert response.status_code == 302
    assert response["Location"] == back
    html = client.get(back).content.decode()
    assert "not in this backup" in html
    ticked = re.findall(r'name="paths_b64" value="([^"]*)"[^>]* checked', html)
    assert ticked == [b64(FOLDER + b"/" + LATIN1)]


def test_files_api_carries_names_that_are_not_utf8_exactly(api: APIClient, native_backup: Snapshot) -> None:
    """
    GIVEN the same backup
    WHEN a client lists the home and the Latin-1 folder through the API
    THEN every name comes back readable in `path`, with `path_b64` giving its exact bytes
         (only for names that are not text), and the display form sent back as `path` is the
         look-alike's name, never the Latin-1 folder's
    """
    root = files(api, native_backup)
    assert root.status_code == 200, root.content
    top = raw_paths(root.json()["results"])
    assert top[FOLDER]["path"] == "archiv-\\xe4"
    assert top[FOLDER]["name"] == "archiv-\\xe4"
    assert top[FOLDER]["path_b64"] == b64(FOLDER)
    assert top[FOLDER_LOOKALIKE]["path"] == "archiv-\\xe4"
    assert "path_b64" not in top[FOLDER_LOOKALIKE]
    assert "path_b64" not in top[b"public_html"]

    inside = files(api, native_backup, path_b64=b64(FOLDER))
    assert inside.status_code == 200, inside.content
    assert set(raw_paths(inside.json()["results"])) == {
        FOLDER + b"/" + name for name in (LATIN1, INVALID, LOOKALIKE, SUB, LINK)
    }
    padded = files(api, native_backup, path_b64=base64.urlsafe_b64encode(FOLDER + b"/" + SUB).decode())
    assert set(raw_paths(padded.json()["results"])) == {FOLDER + b"/" + SUB + b"/deep.txt"}

    literal = files(api, native_backup, path=shown(FOLDER))
    assert set(raw_paths(literal.json()["results"])) == {FOLDER_LOOKALIKE + b"/other.txt"}

    assert files(api, native_backup, path_b64="not*base64").status_code == 400
    both = files(api, native_backup, path="x", path_b64=b64(FOLDER))
    assert both.status_code == 400
    assert "path_b64" in both.json()


def test_search_matches_names_that_are_not_utf8_by_bytes_and_by_their_shown_form(
    api: APIClient, client: Any, owner: Any, native_backup: Snapshot
) -> None:
    def found(q: str) -> set[bytes]:
        response = files(api, native_backup, q=q)
        assert response.status_code == 200, response.content
        return set(raw_paths(response.json()["results"]))

    latin1, lookalike = FOLDER + b"/" + LATIN1, FOLDER + b"/" + LOOKALIKE
    assert found("caf") == {latin1, lookalike}
    assert found("CAF\\xE9") == {latin1, lookalike}  # the shown form, as the page shows both
    assert found("caf?.txt") == {latin1}  # one byte, one character: by its bytes
    assert found("bad-\\xc3(") == {FOLDER + b"/" + INVALID}
    assert found("archiv-") == {FOLDER, FOLDER_LOOKALIKE}
    assert found("deep") == {FOLDER + b"/" + SUB + b"/deep.txt"}

    client.force_login(owner)
    page = client.get(reverse("jobs:snapshot-files", args=[native_backup.pk]), {"q": "caf"})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'caf<span class="raw-byte" title="a byte that is not UTF-8">\\xe9</span>.txt' in html
    assert "caf\\xe9.txt" in html


def test_versions_of_a_file_whose_name_is_not_utf8(
    api: APIClient,
    client: Any,
    owner: Any,
    restore_native_destination: Any,
    names_account: Account,
    native_backup: Snapshot,
) -> None:
    home = os.fsencode(names_account.home)
    second_version = b"the second version, longer than the first\n"
    with open(os.path.join(home, FOLDER, LATIN1), "wb") as handle:
        handle.write(second_version)
    second = make_native_backup(restore_native_destination, names_account).snapshot

    response = api.get(
        f"/api/v1/accounts/{names_account.pk}/versions/", {"path_b64": b64(FOLDER + b"/" + LATIN1)}
    )
    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    assert [(row["snapshot"], row["size"]) for row in rows] == [
        (second.pk, len(second_version)),
        (native_backup.pk, len(TREE[FOLDER + b"/" + LATIN1])),
    ]
    literal = api.get(
        f"/api/v1/accounts/{names_account.pk}/versions/", {"path": shown(FOLDER + b"/" + LATIN1)}
    )
    assert literal.json()["count"] == 0  # no such text name: the shown form is not the name
    lookalike = api.get(
        f"/api/v1/accounts/{names_account.pk}/versions/", {"path_b64": b64(FOLDER + b"/" + LOOKALIKE)}
    )
    assert [row["size"] for row in lookalike.json()["results"]] == [len(TREE[FOLDER + b"/" + LOOKALIKE])] * 2

    client.force_login(owner)
    page = client.get(
        reverse("jobs:file-versions", args=[names_account.pk]), {"path_b64": b64(FOLDER + b"/" + LATIN1)}
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count(f'name="paths_b64" value="{b64(FOLDER + b"/" + LATIN1)}"') == 2
    assert 'caf<span class="raw-byte" title="a byte that is not UTF-8">\\xe9</span>.txt' in html


def test_restore_into_a_new_folder_and_over_the_files_is_byte_identical(
    api: APIClient, names_account: Account, native_backup: Snapshot
) -> None:
    """
    GIVEN a backup of the home
    WHEN the Latin-1 folder (paths_b64) and the look-alike folder (paths) are restored into a
         new folder, then, after both were changed on disk, over the current files
    THEN both come back with exactly the bytes of every name and file, each in its own place
    """
    home = Path(names_account.home)
    body = {"paths_b64": [b64(FOLDER)], "paths": [shown(FOLDER_LOOKALIKE)]}
    item = run_item(queued(api, native_backup, "restore", body))
    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    assert item.params["paths_b64"] == [b64(FOLDER)]
    assert exact_tree(Path(item.result["folder"])) == TREE
    assert api.get(f"/api/v1/queue/{item.pk}/").status_code == 200

    base = os.fsencode(home)
    os.unlink(os.path.join(base, FOLDER, LATIN1))
    os.rename(os.path.join(base, FOLDER, INVALID), os.path.join(base, FOLDER, b"renamed.txt"))
    with open(os.path.join(base, FOLDER_LOOKALIKE, b"other.txt"), "wb") as handle:
        handle.write(b"changed\n")
    item = run_item(
        queued(api, native_backup, "restore", {**body, "target": "overwrite", "confirm_overwrite": True})
    )
    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    now = exact_tree(home)
    assert now.pop(FOLDER + b"/renamed.txt") == TREE[FOLDER + b"/" + INVALID]  # not in the backup: kept
    assert under(now, FOLDER, FOLDER_LOOKALIKE) == TREE


def test_download_holds_the_exact_bytes_of_every_name(
    api: APIClient, client: Any, owner: Any, native_backup: Snapshot, tmp_path: Path
) -> None:
    item = run_item(queued(api, native_backup, "download", {"paths_b64": [b64(FOLDER)]}))
    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    client.force_login(owner)
    unpacked = downloaded_tree(client, item, tmp_path)
    assert unpacked == {b"homedir": None, **{b"homedir/" + k: v for k, v in under(TREE, FOLDER).items()}}


def test_restore_requests_refuse_names_that_do_not_round_trip(
    api: APIClient, native_backup: Snapshot
) -> None:
    """Lone surrogates in `paths` (JSON allows them) and bad base64url are refused with a
    message per field; the display form of a name that is not UTF-8 is not that name."""
    url = f"/api/v1/snapshots/{native_backup.pk}/restore/"
    surrogate = api.post(url, '{"paths": ["archiv-\\udce4"]}', content_type="application/json")
    assert surrogate.status_code == 400
    assert "paths_b64" in str(surrogate.json()["paths"])
    bad = api.post(url, {"paths_b64": ["***"]}, format="json")
    assert bad.status_code == 400
    assert "base64url" in str(bad.json()["paths_b64"])
    shown_form = api.post(url, {"paths": [shown(FOLDER + b"/" + LATIN1)]}, format="json")
    assert shown_form.status_code == 400
    assert "not in this backup" in str(shown_form.json()["paths"])
    assert not QueueItem.objects.filter(kind=QueueItem.Kind.RESTORE).exists()


# --- cPanel archives ------------------------------------------------------------------------


@pytest.fixture
def cpanel_backup(
    restore_cpanel_destination: Any, pure_ftpd: Any, tmp_path: Path, owner: Any, mysql_cleanup: list[str]
) -> Snapshot:
    user = f"nm{secrets.token_hex(3)}"
    mysql_cleanup.append(user)
    extra = list(CPANEL_TREE.items()) + list(MAILBOXES.items())  # the archive has mail/ already
    make_account_archive(
        cpanel_folder(pure_ftpd, restore_cpanel_destination), user, seed=3, size_scale=0.05, extra_home=extra
    )
    (snapshot,) = index_cpanel(restore_cpanel_destination)
    assert snapshot.restorable, snapshot.problems
    account = snapshot.account
    assert account is not None
    home = tmp_path / "homes" / user
    home.mkdir(parents=True)
    chown_tree(home, HOME_OWNER)
    account.home, account.owner = str(home), owner
    account.save()
    return snapshot


CPANEL_TREE = {k: v for k, v in TREE.items() if not isinstance(v, tuple)}


def test_cpanel_archive_names_that_are_not_utf8_browse_search_and_version(
    api: APIClient, client: Any, owner: Any, cpanel_backup: Snapshot
) -> None:
    inside = files(api, cpanel_backup, path_b64=b64(FOLDER))
    assert inside.status_code == 200, inside.content
    assert set(raw_paths(inside.json()["results"])) == {
        FOLDER + b"/" + name for name in (LATIN1, INVALID, LOOKALIKE, SUB)
    }
    literal = files(api, cpanel_backup, path=shown(FOLDER))
    assert set(raw_paths(literal.json()["results"])) == {FOLDER_LOOKALIKE + b"/other.txt"}
    search = files(api, cpanel_backup, q="caf\\xe9")
    assert set(raw_paths(search.json()["results"])) == {FOLDER + b"/" + LATIN1, FOLDER + b"/" + LOOKALIKE}
    assert cpanel_backup.account is not None
    versions = api.get(
        f"/api/v1/accounts/{cpanel_backup.account.pk}/versions/", {"path_b64": b64(FOLDER + b"/" + INVALID)}
    )
    assert [row["size"] for row in versions.json()["results"]] == [len(TREE[FOLDER + b"/" + INVALID])]

    client.force_login(owner)
    page = client.get(reverse("jobs:snapshot-files", args=[cpanel_backup.pk]), {"path_b64": b64(FOLDER)})
    assert page.status_code == 200
    assert (
        'caf<span class="raw-byte" title="a byte that is not UTF-8">\\xe9</span>.txt' in page.content.decode()
    )


def test_cpanel_archive_names_that_are_not_utf8_restore_and_download_byte_identical(
    api: APIClient, client: Any, owner: Any, cpanel_backup: Snapshot, tmp_path: Path
) -> None:
    assert cpanel_backup.account is not None
    home = Path(cpanel_backup.account.home)
    body = {"paths_b64": [b64(FOLDER)], "paths": [shown(FOLDER_LOOKALIKE)]}
    item = run_item(queued(api, cpanel_backup, "restore", body))
    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    assert exact_tree(Path(item.result["folder"])) == CPANEL_TREE

    base = os.fsencode(home)
    write_tree(home, {FOLDER: None, FOLDER + b"/" + LATIN1: b"changed since\n"})
    item = run_item(
        queued(api, cpanel_backup, "restore", {**body, "target": "overwrite", "confirm_overwrite": True})
    )
    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    assert under(exact_tree(base), FOLDER, FOLDER_LOOKALIKE) == CPANEL_TREE

    download = run_item(queued(api, cpanel_backup, "download", {"paths_b64": [b64(FOLDER)]}))
    assert download.status == QueueItem.Status.COMPLETED, (download.error, download.result)
    client.force_login(owner)
    unpacked = downloaded_tree(client, download, tmp_path)
    assert under(unpacked, b"homedir/" + FOLDER) == {
        b"homedir/" + k: v for k, v in under(CPANEL_TREE, FOLDER).items()
    }


@pytest.mark.parametrize("engine", ["native", "cpanel"])
def test_a_mail_folder_whose_name_is_not_utf8_is_no_mailbox_part(
    request: pytest.FixtureRequest, client: Any, owner: Any, engine: str
) -> None:
    """
    GIVEN a home whose mail/<domain>/ holds a mailbox and a Maildir named with a Latin-1 byte
    WHEN the backup is indexed and its page shown
    THEN the mailbox is a part, the other folder is not (no email address; its shown form
         `b\\xe9@...` could name another folder), and the page shows the parts
    """
    snapshot = request.getfixturevalue("native_backup" if engine == "native" else "cpanel_backup")
    boxes = {p["name"] for p in snapshot.parts if p["kind"] == "email_accounts" and "nm-example" in p["name"]}
    assert boxes == {"info@nm-example.org"}
    client.force_login(owner)
    page = client.get(reverse("jobs:snapshot-detail", args=[snapshot.pk]))
    assert page.status_code == 200
    assert "info@nm-example.org" in page.content.decode()


def test_archive_members_whose_names_are_not_utf8_make_no_parts() -> None:
    """GIVEN an archive with a DNS zone file named with a Latin-1 byte beside a plain one
    WHEN it is indexed THEN only the plain zone is a part (part names are text)."""
    import io

    from destinations.formats.cpanel import read_archive
    from tests.support.cpanel_archives.hostile import _member

    archive = b"".join(
        [
            _member("bob/", typeflag=b"5", mode=0o755),
            _member("bob/cp/bob", b"USER=bob\nDNS=bobsite.com\n"),
            _member("bob/dnszones/", typeflag=b"5", mode=0o755),
            _member("bob/dnszones/bobsite.com.db", b"$ORIGIN bobsite.com.\n"),
            _member("bob/dnszones/caf\udce9.com.db", b"$ORIGIN cafe.com.\n"),
        ]
    ) + bytes(1024)
    index = read_archive(io.BytesIO(archive), account_hint="bob")
    assert [p.name for p in index.parts if p.kind == "dns_zones"] == ["bobsite.com"]

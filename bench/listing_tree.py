"""A synthetic home folder of ~1,000,000 entries for the file-listing benchmark, and the two
measured operations on it (run by bench/worker.py in a fresh interpreter each).

The tree looks like a big shared-hosting account: ten WordPress sites with plugins nested up to
six levels deep (thousands of folders of 5-40 files), ten years of monthly upload folders, a page
cache of 100,000 files in one folder, and Maildirs of which three hold 50,000 messages each.
Backup k (1..N) of the series differs from backup k-1 in ~1 % of its files: ~0.9 % get a new
size and mtime, ~0.1 % are deleted, and a new file appears in every 50th folder.

Entries are generated on the fly (as catalog.native_entries does from a manifest), so the
memory measured is what listing.build itself holds.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Iterator
from typing import Any

from bench.common import PeakSampler, measured

BASE_MTIME = 1_700_000_000
BIG_FOLDERS = {
    "cache": "public_html/wp-content/cache/page",
    "maildir": "mail/example.com/box00/cur",
    "uploads": "public_html/wp-content/uploads/2020/05",
    "plugin": "public_html/site3/wp-content/plugins/plugin07/includes/admin/views",
    "root": "",
}
WORDS = [
    "admin",
    "ajax",
    "api",
    "assets",
    "block",
    "blocks",
    "cache",
    "class",
    "comments",
    "core",
    "css",
    "customizer",
    "dashboard",
    "editor",
    "fields",
    "fonts",
    "forms",
    "frontend",
    "functions",
    "gallery",
    "header",
    "helpers",
    "icons",
    "images",
    "inc",
    "includes",
    "js",
    "lib",
    "library",
    "media",
    "menu",
    "meta",
    "modules",
    "network",
    "options",
    "page",
    "parts",
    "partials",
    "plugin",
    "post",
    "posts",
    "public",
    "rest",
    "search",
    "settings",
    "shortcodes",
    "sidebar",
    "src",
    "templates",
    "theme",
    "tools",
    "user",
    "users",
    "utils",
    "vendor",
    "widgets",
]


def _changed(index: int, backup: int) -> int:
    """How many of backups 2..`backup` changed file `index` (about 1 % each)."""
    return sum(1 for k in range(2, backup + 1) if (index * 2_654_435_761 + k * 40_503) % 113 == 0)


def _deleted(index: int, backup: int) -> bool:
    return any((index * 2_246_822_519 + k * 3_266_489_917) % 997 == 0 for k in range(2, backup + 1))


class _Tree:
    """Yields (folder, [file names]) for the whole tree, deterministically."""

    def __init__(self, seed: int, scale: float) -> None:
        self.rng = random.Random(seed)
        self.scale = scale

    def scaled(self, count: int) -> int:
        return max(1, int(count * self.scale))

    def name(self, suffix: str) -> str:
        rng = self.rng
        return f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{rng.randrange(10_000)}{suffix}"

    def files(self, count: int, suffixes: tuple[str, ...]) -> list[str]:
        names = {self.name(self.rng.choice(suffixes)) for _ in range(count)}
        return sorted(names)

    def plugin(self, base: str, depth: int) -> Iterator[tuple[str, list[str]]]:
        yield base, self.files(self.rng.randint(5, 40), (".php", ".js", ".css", ".json", ".txt"))
        if depth < 5:
            for sub in sorted({self.rng.choice(WORDS) for _ in range(self.rng.randint(1, 4))}):
                yield from self.plugin(f"{base}/{sub}", depth + 1)

    def folders(self) -> Iterator[tuple[str, list[str]]]:
        for site in range(10):
            root = f"public_html/site{site}"
            yield root, self.files(20, (".php", ".html", ".txt"))
            for plugin in range(self.scaled(13)):
                yield from self.plugin(f"{root}/wp-content/plugins/plugin{plugin:02d}", 0)
        yield BIG_FOLDERS["plugin"], self.files(30, (".php",))
        for year in range(2015, 2015 + max(6, self.scaled(10))):
            for month in range(1, 13):
                images = self.files(500, (".jpg", ".png", ".webp"))
                sized = [f"{n[:-4]}-{w}x{h}{n[-4:]}" for n in images for w, h in ((150, 150), (1024, 768))]
                yield f"public_html/wp-content/uploads/{year}/{month:02d}", sorted(images + sized)
        yield BIG_FOLDERS["cache"], [f"{n:08x}.html" for n in range(self.scaled(100_000))]
        for box in range(30):
            messages = self.scaled(50_000 if box < 3 else 3_000)
            base = f"mail/example.com/box{box:02d}"
            yield (
                f"{base}/cur",
                [
                    f"{BASE_MTIME - n * 37}.M{n * 7919 % 999_983}P{n % 99_991}.mail.example.com,S={2_000 + n % 50_000}:2,S"
                    for n in range(messages)
                ],
            )
            for special in (".Sent", ".Trash"):
                yield (
                    f"{base}/{special}/cur",
                    [f"{BASE_MTIME - n}.M{n}P{n}.host,S={n}:2,S" for n in range(500)],
                )


def entries(backup: int, seed: int = 7, scale: float = 1.0) -> Iterator[Any]:
    """The listing entries of backup `backup` (1..N) of the synthetic home (scale 1: ~1M)."""
    from destinations.listing import Entry

    index = 0
    made: set[str] = set()
    for number, (folder, names) in enumerate(_Tree(seed, scale).folders()):
        parts = folder.split("/")
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            if path not in made:
                made.add(path)
                yield Entry(path=path, type="dir", mtime=BASE_MTIME, mode=0o755)
        for name in names:
            index += 1
            if _deleted(index, backup):
                continue
            version = _changed(index, backup)
            yield Entry(
                path=f"{folder}/{name}",
                type="file",
                size=1_000 + index % 90_000 + version,
                mtime=BASE_MTIME - index + version * 86_400,
                mode=0o644,
            )
        for k in range(2, backup + 1):
            if number % 50 == k:
                yield Entry(path=f"{folder}/new-in-backup-{k}.php", type="file", size=k, mtime=BASE_MTIME + k)


def count_entries(backup: int = 1, scale: float = 1.0) -> int:
    return sum(1 for _ in entries(backup, scale=scale))


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build_backups(spec: dict[str, Any]) -> dict[str, Any]:
    """Build the listings of backups 1..N; record Snapshot rows (for the API) and count
    ListingBlob rows after each.

    flow "list": each backup's entries are generated first, then `listing.build` is timed
    alone (and its peak RSS over what the entries already hold). flow "generator": entries are
    generated while `listing.build` consumes them, as catalog.record_native feeds it from a
    manifest: the peak memory of that is the realistic one (time includes generating them).
    """
    from django.contrib.auth import get_user_model
    from django.db.models import Sum
    from django.utils import timezone

    from destinations import listing
    from destinations.models import Destination, Engine, ListingBlob
    from jobs.models import Snapshot

    backups = int(spec.get("backups", 7))
    scale = float(spec.get("scale", 1.0))
    flow = spec.get("flow", "list")
    if spec.get("migrate"):
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
    destination, _ = Destination.objects.get_or_create(
        name="listing-bench", defaults={"host": "127.0.0.1", "username": "nobody", "ssl": False}
    )
    user_model = get_user_model()
    if not user_model.objects.filter(username="bench-admin").exists():
        user_model.objects.create_superuser("bench-admin", "admin@example.invalid", "unused-password-1")
    builds = []
    for backup in range(1, backups + 1):
        generate = 0.0
        items: list[Any] | None = None
        if flow == "list":
            start = time.perf_counter()
            items = list(entries(backup, scale=scale))
            generate = time.perf_counter() - start
        seen = [0]

        def counted(source: Iterator[Any], seen: list[int] = seen) -> Iterator[Any]:
            for entry in source:
                seen[0] += 1
                yield entry

        sampler = PeakSampler([], interval=0.005)
        rss_before = _rss()
        sampler.start()
        with measured() as numbers:
            root = listing.build(counted(iter(items) if items is not None else entries(backup, scale=scale)))
        sampler.stop()
        count = seen[0]
        del items
        rows = ListingBlob.objects.count()
        totals = ListingBlob.objects.aggregate(entries=Sum("entries"))
        snapshot = Snapshot.objects.create(
            destination=destination,
            account_name="bigsite",
            engine=Engine.NATIVE,
            path=f"bigsite/{flow}-backup-{backup}",
            created=timezone.now(),
            state=Snapshot.State.COMPLETE,
            listing_root=root,
        )
        builds.append(
            {
                "backup": backup,
                "entries": count,
                "snapshot": snapshot.pk,
                "root": root,
                "generate_seconds": generate,
                "seconds": numbers["wall"],
                "cpu": numbers["cpu"],
                "rss_before_mb": rss_before / 2**20,
                "peak_rss_mb": max(sampler.peak_rss, rss_before) / 2**20,
                "blob_rows": rows,
                "blob_entries": totals["entries"] or 0,
            }
        )
    return {"ok": True, "flow": flow, "builds": builds, "maxrss_mb": max(b["peak_rss_mb"] for b in builds)}


def browse(spec: dict[str, Any]) -> dict[str, Any]:
    """Time one page of each folder of BIG_FOLDERS: listing.list_folder_ordered, then the API
    view and the files page."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client, override_settings
    from django.urls import Resolver404, resolve

    from destinations import listing

    root, snapshot = spec["root"], spec["snapshot"]
    repeat = int(spec.get("repeat", 15))
    results: dict[str, Any] = {}
    for label, folder in BIG_FOLDERS.items():
        times = []
        count = 0
        for _ in range(repeat):
            # What the files page does: the folder in display order (case-insensitive, the
            # dearer order), then the Entry objects of its first page of 100.
            start = time.perf_counter()
            found = listing.list_folder_ordered(root, folder, fold_case=True)
            page = found[:100] if found is not None else []
            times.append(time.perf_counter() - start)
            count = len(found or [])
            del found, page  # freeing 100,000 rows is not part of the next call
        results[label] = {"path": folder, "entries": count, "first_ms": times[0] * 1000}
        results[label]["median_ms"] = statistics.median(times) * 1000
    api: dict[str, Any] = {}
    url = f"/api/v1/snapshots/{snapshot}/files/"
    try:
        resolve(url)
    except Resolver404:
        api = {"present": False}
    else:
        client = Client()
        client.force_login(get_user_model().objects.get(username="bench-admin"))
        api["present"] = True
        for label, folder in BIG_FOLDERS.items():
            times = []
            status = 0
            for _ in range(max(3, repeat // 3)):
                start = time.perf_counter()
                response = client.get(url, {"path": folder}, HTTP_HOST="127.0.0.1")
                times.append(time.perf_counter() - start)
                status = response.status_code
                del response
            api[label] = {"status": status, "median_ms": statistics.median(times) * 1000}
            times = []
            # The throwaway panel has no collected static files: name them as DEBUG does.
            plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
            with override_settings(STORAGES={**settings.STORAGES, "staticfiles": plain}):
                for _ in range(max(3, repeat // 3)):
                    start = time.perf_counter()
                    response = client.get(
                        f"/backups/{snapshot}/files/", {"path": folder}, HTTP_HOST="127.0.0.1"
                    )
                    times.append(time.perf_counter() - start)
                    status = response.status_code
                    del response
            api[f"{label}-page"] = {"status": status, "median_ms": statistics.median(times) * 1000}
    return {"ok": True, "list_folder": results, "api": api}

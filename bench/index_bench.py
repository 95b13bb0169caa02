#!/usr/bin/env python3
"""Benchmark of indexing (issue "reindex"): archive streaming, unchanged reindex, file listings.

    .venv/bin/python bench/index_bench.py             # everything (~500 MB archive, 500 archives, 1M entries)
    .venv/bin/python bench/index_bench.py --quick     # smoke run: ~50 MB archive, 60 archives, 100k entries
    .venv/bin/python bench/index_bench.py --parts stream,reindex,listing --runs 3

Needs root (pure-ftpd as in tests/support/ftp_servers/pureftpd.py), curl, tar, lftp. Builds under
$BACKUPSITE_BENCH_DIR (default /tmp/backupsite-bench/index):

1. stream: a cPanel account archive (tests.support.cpanel_archives.make_account_archive, ~500 MB of
   .tar.gz) on a private pure-ftpd; `curl -s ftp://... | tar tz > /dev/null` against what
   reindex does with it: `cpanel.read_archive` over `FtpConnection.download` through
   `streams.prefetch` (bench/worker.py read-archive), interleaved. Target: >= 0.8 x curl's rate.
2. reindex: 500 small archives in cPanel's date-folder layout (<date>/accounts/<user>.tar.gz);
   `jobs.reindex.sync.run` through the queue, twice (the first indexes everything), then
   the unchanged case interleaved with `lftp -c 'open ...; find'`. Target: <= 2 x the listing.
3. listing: a synthetic home of ~1,000,000 entries (bench/listing_tree.py), 7 backups with ~1 %
   change between them built with `listing.build`: build time and peak memory, ListingBlob
   rows against 7 x 1,000,000, and browsing one page of a folder (list_folder_ordered and
   its first 100 entries, the API view GET /api/v1/snapshots/{id}/files/?path=..., and the
   files page GET /backups/{id}/files/?path=...) in < 200 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    DATA,
    ROOT,
    FtpServer,
    MiB,
    PrivateRedis,
    Run,
    django_env,
    fresh_panel_dir,
    log,
    run_shell,
    run_worker,
    setup_django,
)
from bench.results import Target, finish, heading, machine_line, med_wall, timing_table

CURL_TAR = "curl -s ftp://... | tar tz"
BS_STREAM = "Backupsite read_archive (download + prefetch)"
CURL_CAT = "curl -s ftp://... > /dev/null (transfer only)"
BS_REINDEX = "Backupsite reindex, unchanged"
LFTP_FIND = "lftp -c 'open ...; find'"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = ROOT / "index"
        self.runs: list[Run] = []
        self.targets: list[Target] = []
        self.notes: dict[str, Any] = {}
        self.server: FtpServer
        self.env: dict[str, str]

    def record(self, run: Run) -> None:
        self.runs.append(run)
        extra = f"  rss {run.extra['maxrss_mb']:.0f} MB" if "maxrss_mb" in run.extra else ""
        log(
            f"  {run.dataset:9s} {run.method:48s} {run.wall:7.2f} s  cpu {run.cpu:5.2f}  srv {run.server_cpu:4.2f}"
            f"  bg {run.background:.2f}{extra}{'' if run.ok else '  FAILED'}"
        )

    # -- 1. one big archive, streamed ----------------------------------------------------------

    def big_archive(self) -> Path:
        from tests.support.cpanel_archives import make_account_archive

        scale = self.args.archive_scale
        folder = DATA / f"cpanel-scale{scale:g}"
        marker = DATA / f"cpanel-scale{scale:g}.ok"
        path = folder / "bigacct.tar.gz"
        if not marker.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            log(f"generating a cPanel archive with size_scale={scale:g} in {folder}")
            made = make_account_archive(folder, "bigacct", size_scale=scale, seed=1)
            marker.write_text(json.dumps({"size": path.stat().st_size, "tar": made.uncompressed_size}))
        return path

    def stream_part(self) -> None:
        archive = self.big_archive()
        size = archive.stat().st_size
        remote = self.server.fresh_dir("cp-stream") / archive.name
        os.link(archive, remote)  # same file system: no copy
        self.notes["archive_bytes"] = size
        self.notes["archive_tar_bytes"] = json.loads(
            (archive.parent.parent / f"{archive.parent.name}.ok").read_text()
        )["tar"]
        label = f"{size / MiB:.0f}MiB.gz"
        url = f"{self.server.url}/cp-stream/{archive.name}"
        spec = json.dumps(
            {
                "port": self.server.port,
                "user": self.server.user,
                "password": self.server.password,
                "path": f"cp-stream/{archive.name}",
                "account": "bigacct",
            }
        )
        os.system(f"cat {archive} > /dev/null")  # noqa: S605 - a warm page cache for everyone
        log(f"streaming one {size / MiB:.0f} MiB archive: {self.args.runs} reps, interleaved")
        methods = [
            lambda: run_worker(BS_STREAM, label, ["read-archive", spec], self.env, server=self.server),
            lambda: run_shell(CURL_TAR, label, f"curl -sS {url} | tar tz > /dev/null", server=self.server),
            lambda: run_shell(CURL_CAT, label, f"curl -sS {url} > /dev/null", server=self.server),
        ]
        for rep in range(self.args.runs):
            shift = rep % len(methods)
            for method in methods[shift:] + methods[:shift]:
                self.record(method())
        remote.unlink()
        ours, curl = med_wall(self.runs, BS_STREAM, label), med_wall(self.runs, CURL_TAR, label)
        self.targets.append(
            Target(f"stream a {label} cPanel archive: rate vs curl | tar tz", ours, curl, 0.8, at_least=True)
        )

    # -- 2. reindex of an unchanged destination ------------------------------------------------

    def make_destination_tree(self, folder: Path) -> int:
        """`dates` x `users` archives as <date>/accounts/<user>.tar.gz (one archive per user,
        hard-linked into every date folder) plus cPanel's per-date extras."""
        from tests.support.cpanel_archives import make_account_archive

        users = [f"user{n:02d}" for n in range(self.args.users)]
        source = DATA / f"cpanel-small-{self.args.users}"
        marker = DATA / f"cpanel-small-{self.args.users}.ok"
        if not marker.exists():
            shutil.rmtree(source, ignore_errors=True)
            source.mkdir(parents=True)
            log(f"generating {len(users)} small cPanel archives in {source}")
            for number, user in enumerate(users):
                make_account_archive(source, user, size_scale=0.05, seed=number)
            marker.write_text("ok")
        count = 0
        for day in range(self.args.dates):
            date = f"2025-{6 + day // 28:02d}-{1 + day % 28:02d}"
            accounts = folder / date / "accounts"
            accounts.mkdir(parents=True)
            for user in users:
                os.link(source / f"{user}.tar.gz", accounts / f"{user}.tar.gz")
                count += 1
            (accounts / ".master.meta").write_text(json.dumps({"users": users, "date": date}))
            (folder / date / "system").mkdir()
            (folder / date / "system" / "dirs.tar.gz").write_bytes(b"")
        self.server.chown_tree(folder)
        return count

    def reindex_part(self) -> None:
        from destinations.models import Destination, Engine

        folder = self.server.fresh_dir("cp-reindex")
        count = self.make_destination_tree(folder)
        destination = Destination(
            name="cp-reindex",
            engine=Engine.CPANEL,
            host="127.0.0.1",
            port=self.server.port,
            username=self.server.user,
            directory="cp-reindex",
            ssl=False,
            timeout=30,
            retries=3,
            concurrency=2,
        )
        destination.set_password(self.server.password)
        destination.save()
        label = f"{count} archives"
        log(f"reindex of {count} archives: first run indexes them")
        first = run_worker(
            "Backupsite reindex, first (reads every archive)",
            label,
            ["reindex", str(destination.pk)],
            self.env,
            server=self.server,
        )
        self.record(first)
        self.notes["first_reindex"] = (first.extra.get("result"), first.wall)
        if (first.extra.get("result") or {}).get("added") != count:
            first.ok = False
            log(f"  the first reindex added {(first.extra.get('result') or {}).get('added')}, not {count}")
        find_cmd = (
            f"lftp -c 'set ftp:ssl-allow no; open -u {self.server.user},{self.server.password} "
            f"-p {self.server.port} 127.0.0.1; find /cp-reindex' > /dev/null"
        )

        def reindex() -> Run:
            run = run_worker(
                BS_REINDEX, label, ["reindex", str(destination.pk)], self.env, server=self.server
            )
            result = run.extra.get("result") or {}
            if run.ok and (result.get("unchanged") != count or result.get("added") or result.get("updated")):
                run.ok = False
                run.extra["error"] = f"not unchanged: {result}"
            return run

        methods = [reindex, lambda: run_shell(LFTP_FIND, label, find_cmd, server=self.server)]
        for rep in range(self.args.runs):
            for method in methods if rep % 2 == 0 else methods[::-1]:
                self.record(method())
        ours, lftp = med_wall(self.runs, BS_REINDEX, label), med_wall(self.runs, LFTP_FIND, label)
        self.targets.append(Target(f"reindex of {label}, unchanged, vs lftp find", ours, lftp, 2.0))
        reindexes = [r for r in self.runs if r.method == BS_REINDEX and r.ok]
        if reindexes:
            self.notes["reindex_data_connections"] = reindexes[0].extra.get("data_connections_by_command")

    # -- 3. listings of a million entries ------------------------------------------------------

    def listing_part(self) -> None:
        backups, scale = self.args.backups, self.args.listing_scale
        log(
            "listing: building backup 1 of the synthetic home from a generator (as catalog does), fresh database"
        )
        fed_env = dict(self.env, BACKUPSITE_DATA_DIR=str(fresh_panel_dir("index-listing-generator")))
        spec = {"backups": 1, "scale": scale, "flow": "generator", "migrate": True}
        fed = run_worker(
            "listing.build (generator)", "listing", ["listing-build", json.dumps(spec)], fed_env, timeout=7200
        )
        log(
            f"listing: building {backups} backups (~1 % changed between them), entries generated before each build"
        )
        spec = {"backups": backups, "scale": scale, "flow": "list"}
        built = run_worker(
            "listing.build x backups", "listing", ["listing-build", json.dumps(spec)], self.env, timeout=7200
        )
        if not (built.ok and fed.ok):
            log(f"  listing build FAILED: {built.extra.get('error') or fed.extra.get('error')}")
            self.targets.append(Target("listing build", float("nan"), None, 0))
            return
        builds = built.extra["builds"]
        for row in fed.extra["builds"] + builds:
            log(
                f"  backup {row['backup']} ({row['entries']:,} entries): build {row['seconds']:.2f} s "
                f"(+{row['generate_seconds']:.1f} s generating the entries beforehand), peak RSS "
                f"{row['peak_rss_mb']:.0f} MB (before {row['rss_before_mb']:.0f} MB), "
                f"{row['blob_rows']} blob rows holding {row['blob_entries']:,} entries"
            )
        last, first, generator = builds[-1], builds[0], fed.extra["builds"][0]
        browsed = run_worker(
            "browse",
            "listing",
            ["listing-browse", json.dumps({"root": last["root"], "snapshot": last["snapshot"]})],
            self.env,
        )
        self.notes["listing"] = {"generator": generator, "builds": builds, "browse": browsed.extra}
        entries = first["entries"]
        self.targets += [
            Target(
                f"listing.build of {entries:,} entries: time (entries generated beforehand)",
                first["seconds"],
                None,
                60.0,
                note="no target given; the limit is a sanity bound",
            ),
            Target(
                f"listing.build of {entries:,} entries fed by a generator: peak RSS increase",
                generator["peak_rss_mb"] - generator["rss_before_mb"],
                None,
                256,
                unit="MB",
                note="no target given; the limit is the worker's memory target",
            ),
            Target(
                f"ListingBlob rows after {backups} backups vs {backups} x {entries:,} file rows",
                last["blob_rows"],
                backups * entries,
                0.05,
                unit="count",
            ),
        ]
        if not browsed.ok:
            self.targets.append(Target("browse one folder", float("nan"), None, 200, unit="ms"))
            return
        for row in browsed.extra["list_folder"].values():
            self.targets.append(
                Target(
                    f"list_folder_ordered + first 100 entries, {row['path'] or '(root)'} ({row['entries']:,} entries), median "
                    f"(first call {row['first_ms']:.0f} ms)",
                    row["median_ms"],
                    None,
                    200,
                    unit="ms",
                    below=True,
                )
            )
        api = browsed.extra["api"]
        if api.get("present"):
            for label, folder in (
                (key, value) for key, value in browsed.extra["list_folder"].items() if key in api
            ):
                self.targets.append(
                    Target(
                        f"GET /api/v1/snapshots/{{id}}/files/?path={folder['path']} (HTTP {api[label]['status']}), median",
                        api[label]["median_ms"],
                        None,
                        200,
                        unit="ms",
                        below=True,
                    )
                )
                page = api.get(f"{label}-page")
                if page:
                    self.targets.append(
                        Target(
                            f"GET /backups/{{id}}/files/?path={folder['path']} (HTTP {page['status']}), median",
                            page["median_ms"],
                            None,
                            200,
                            unit="ms",
                            below=True,
                        )
                    )
        else:
            log("  the API view /api/v1/snapshots/{id}/files/ is not there: not timed")

    # -- main ----------------------------------------------------------------------------------

    def run(self) -> int:
        args = self.args
        log(f"machine: {machine_line()}")
        panel = fresh_panel_dir("index")
        parts = [p for p in args.parts.split(",") if p]
        with PrivateRedis(self.work / "redis") as redis, FtpServer(self.work / "ftpd") as server:
            self.server = server
            self.env = django_env(panel, redis.url)
            setup_django(self.env, migrate=True)
            if "stream" in parts:
                self.stream_part()
            if "reindex" in parts:
                self.reindex_part()
            if "listing" in parts:
                self.listing_part()
        heading("Index benchmark")
        if self.runs:
            print(timing_table(self.runs))
            print()
        return finish(
            "index", args, self.runs, self.targets, date=datetime.now(UTC).isoformat(), notes=self.notes
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="~50 MB archive, 60 archives, 2 backups, 2 reps")
    parser.add_argument("--parts", default="stream,reindex,listing")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--archive-scale", type=float, default=600, help="size_scale of the big archive")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--dates", type=int, default=25)
    parser.add_argument("--backups", type=int, default=7)
    parser.add_argument("--listing-scale", type=float, default=1.0, help="1.0: ~1,000,000 entries")
    args = parser.parse_args()
    if args.quick:
        args.archive_scale, args.users, args.dates, args.backups, args.runs = 40, 6, 10, 2, 2
        args.listing_scale = 0.1
    if os.geteuid() != 0:
        raise SystemExit("run as root: pure-ftpd needs it (tests/support/ftp_servers/pureftpd.py)")
    raise SystemExit(Bench(args).run())


if __name__ == "__main__":
    main()

"""Benchmark for issue "run a real hosting server unattended": account discovery and
all-accounts runs.

* Discovery of N cPanel accounts (default 2,000) from a simulated server tree under
  BACKUPSITE_HOST_ROOT: user files, passwd, trueuser files and one database map per account.
  Measured: the first discovery (every account new), a second one (nothing changed), and the
  baseline of adding the same accounts one by one with the model's validation (as the API
  does for each account typed in by hand).
* An all-accounts backup job over M small accounts (default 200, ~20 files and ~40 KB each)
  on a private pure-ftpd: the job backing up `--parallel` accounts at a time against the same
  job with parallel=1 (one by one), interleaved, in the same run. Time per account and total.

Run from the repository root, as root (pure-ftpd): `.venv/bin/python bench/accounts_bench.py`
(`--quick`: 500 accounts to discover, 40 to back up, 1 rep).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    FtpServer,
    PrivateRedis,
    Run,
    background_cores,
    django_env,
    fresh_panel_dir,
    log,
    setup_django,
    wait_quiet,
)
from bench.results import Target, finish, median


def build_cpanel_tree(root: Path, count: int) -> None:
    """`count` cPanel accounts of 20 resellers, 5 % suspended, each with a database map."""
    shutil.rmtree(root, ignore_errors=True)
    users = root / "var" / "cpanel" / "users"
    maps = root / "var" / "cpanel" / "databases"
    users.mkdir(parents=True)
    maps.mkdir(parents=True)
    (root / "etc").mkdir()
    passwd = ["root:x:0:0:root:/root:/bin/bash"]
    owners, domains = [], []
    for index in range(count):
        name = f"acct{index:05d}"
        owner = "root" if index % 20 == 0 else f"res{index % 20:02d}"
        lines = [
            f"USER={name}",
            f"OWNER={owner}",
            "PLAN=default",
            f"DNS={name}.example",
            f"DNS1=www.{name}.example",
        ]
        if index % 20 == 7:
            lines.append("SUSPENDED=1")
        (users / name).write_text("\n".join(lines) + "\n")
        passwd.append(f"{name}:x:{1000 + index}:{1000 + index}::/home/{name}:/bin/bash")
        (root / "home" / name).mkdir(parents=True)
        owners.append(f"{name}: {owner}")
        domains.append(f"{name}.example: {name}")
        doc = {"MYSQL": {"dbs": {f"{name}_wp": {}}, "dbusers": {f"{name}_wp": {"dbs": {f"{name}_wp": 1}}}}}
        (maps / f"{name}.json").write_text(json.dumps(doc))
    (root / "etc" / "passwd").write_text("\n".join(passwd) + "\n")
    (root / "etc" / "trueuserowners").write_text("\n".join(owners) + "\n")
    (root / "etc" / "trueuserdomains").write_text("\n".join(domains) + "\n")


def build_plain_tree(root: Path, count: int) -> None:
    """`count` small homes (~20 files, ~40 KB each) of system users."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "etc").mkdir(parents=True)
    passwd = ["root:x:0:0:root:/root:/bin/bash"]
    rng = random.Random(7)
    for index in range(count):
        name = f"site{index:04d}"
        passwd.append(f"{name}:x:{2000 + index}:{2000 + index}::/home/{name}:/bin/bash")
        home = root / "home" / name / "public_html"
        home.mkdir(parents=True)
        for number in range(20):
            (home / f"page{number}.php").write_bytes(rng.randbytes(1000) + b"<?php echo 1;\n" * 80)
    (root / "etc" / "passwd").write_text("\n".join(passwd) + "\n")


class NoDatabases:
    def grants_catalog(self) -> tuple[list[str], list[str]]:
        return [], []


def discovery_phase(args: argparse.Namespace, runs: list[Run], notes: dict[str, Any]) -> None:
    from django.conf import settings

    from jobs.discovery import accounts as discovery
    from jobs.models import Account

    tree = ROOT / "accounts" / "cpanel-host"
    log(f"building a cPanel tree of {args.discover} accounts")
    build_cpanel_tree(tree, args.discover)
    settings.HOST_ROOT = str(tree)
    for rep in range(args.reps):
        Account.objects.all().delete()
        background = wait_quiet()
        start = time.perf_counter()
        found, summary = discovery.discover(server=NoDatabases())
        first = time.perf_counter() - start
        assert len(summary.added) == args.discover, (len(summary.added), found.problems[:5])
        runs.append(Run("discovery, first (all new)", "cpanel", first, background=background))
        start = time.perf_counter()
        _, again = discovery.discover(server=NoDatabases())
        second = time.perf_counter() - start
        assert again.unchanged == args.discover
        runs.append(Run("discovery, again (no change)", "cpanel", second, background=background))
        scanned = discovery.scan(str(tree))
        Account.objects.all().delete()
        background = wait_quiet()
        start = time.perf_counter()
        for f in scanned.accounts:  # the baseline: each account added by hand, validated
            account = Account(
                username=f.username,
                home=f.home,
                source=f.source,
                reseller=f.reseller,
                domains=f.domains,
                suspended=f.suspended,
                plan=f.plan,
                databases=f.databases or [],
                database_users=f.database_users or [],
            )
            account.full_clean()
            account.save()
        one_by_one = time.perf_counter() - start
        runs.append(Run("accounts added one by one (validated)", "cpanel", one_by_one, background=background))
        log(
            f"  rep {rep + 1}: discovery {first:.2f} s ({1000 * first / args.discover:.2f} ms/account), "
            f"again {second:.2f} s, one by one {one_by_one:.2f} s"
        )
    notes["discovered_accounts"] = args.discover


def backup_phase(args: argparse.Namespace, server: FtpServer, runs: list[Run], notes: dict[str, Any]) -> None:
    from django.conf import settings

    from destinations.models import Destination
    from jobs import queue
    from jobs.backup import cycle as backup
    from jobs.discovery import accounts as discovery
    from jobs.models import Account, BackupJob, QueueItem

    tree = ROOT / "accounts" / "plain-host"
    log(f"building {args.accounts} small homes")
    build_plain_tree(tree, args.accounts)
    settings.HOST_ROOT = str(tree)
    Account.objects.all().delete()
    discovery.discover(server=NoDatabases())
    server.fresh_dir("accounts")
    destination = Destination(
        name="accounts",
        host="127.0.0.1",
        port=server.port,
        username=server.user,
        directory="accounts",
        ssl=False,
        timeout=30,
        retries=3,
        concurrency=args.concurrency,
    )
    destination.set_password(server.password)
    destination.save()
    methods = {"one by one (parallel=1)": 1, f"parallel={args.parallel}": args.parallel}
    jobs = {
        method: BackupJob.objects.create(
            name=method,
            destination=destination,
            type="full",
            retention=99,
            include_databases=False,
            parallel=parallel,
        )
        for method, parallel in methods.items()
    }
    order = list(methods)
    for rep in range(args.reps):
        for method in order:
            job = jobs[method]
            background = wait_quiet()
            item = queue.enqueue(
                QueueItem.Kind.BACKUP, dispatch=False, title=job.name, job=job, destination=destination
            )
            assert backup.take_job(item.pk) is True
            start = time.perf_counter()
            queue.run_item(item.pk, QueueItem.Kind.BACKUP, backup.run)
            wall = time.perf_counter() - start
            item.refresh_from_db()
            done = sum(1 for r in item.result.get("accounts", []) if r["status"] == "completed")
            ok = item.status == "completed" and done == args.accounts
            runs.append(Run(method, f"{args.accounts} accounts", wall, background=background, ok=ok))
            log(
                f"  rep {rep + 1} {method:28s} {wall:6.2f} s  {1000 * wall / args.accounts:6.1f} ms/account"
                f"  {done} completed  bg {background:.2f}" + ("" if ok else f"  FAILED {item.error[:300]}")
            )
        order = order[1:] + order[:1]
    notes["backed_up_accounts"] = args.accounts
    notes["destination_concurrency"] = args.concurrency


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--discover", type=int, default=2000)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2, help="the destination's connection cap")
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    if args.quick:
        args.discover, args.accounts, args.reps = 500, 40, 1

    work = ROOT / "accounts"
    panel = fresh_panel_dir("accounts")
    runs: list[Run] = []
    notes: dict[str, Any] = {"background_at_start": background_cores()}
    with PrivateRedis(work / "redis") as redis, FtpServer(work / "ftp") as server:
        setup_django(django_env(panel, redis.url), migrate=True)
        discovery_phase(args, runs, notes)
        backup_phase(args, server, runs, notes)

    def med(method: str) -> float:
        return median([r.wall for r in runs if r.method == method and r.ok] or [float("nan")])

    first, again, by_hand = (
        med("discovery, first (all new)"),
        med("discovery, again (no change)"),
        med("accounts added one by one (validated)"),
    )
    sequential, parallel = med("one by one (parallel=1)"), med(f"parallel={args.parallel}")
    print()
    print("| measure | total | per account |")
    print("|---|---|---|")
    for name, value, count in (
        (f"discovery of {args.discover} accounts, first", first, args.discover),
        ("discovery again, nothing changed", again, args.discover),
        ("the same accounts added one by one", by_hand, args.discover),
        (f"all-accounts run of {args.accounts}, one by one", sequential, args.accounts),
        (f"all-accounts run of {args.accounts}, parallel={args.parallel}", parallel, args.accounts),
    ):
        print(f"| {name} | {value:.2f} s | {1000 * value / count:.2f} ms |")
    print(
        f"\nratios: discovery / one by one = {first / by_hand:.2f}; "
        f"parallel={args.parallel} / one by one = {parallel / sequential:.2f} "
        f"(speed-up {sequential / parallel:.2f}x)"
    )
    targets = [
        Target(f"discovery of {args.discover} accounts", first, None, 60.0, note="seconds, first run"),
        Target("discovery per account", 1000 * first / args.discover, None, 20.0, unit="ms"),
        Target("discovery vs adding them one by one", first, by_hand, 1.0, note="ratio <= 1"),
        Target(
            f"all-accounts run, parallel={args.parallel} vs one by one",
            parallel,
            sequential,
            0.9,
            note="ratio <= 0.9: accounts overlap",
        ),
    ]
    print()
    sys.exit(finish("accounts", args, runs, targets, notes=notes))


if __name__ == "__main__":
    os.umask(0o022)
    main()

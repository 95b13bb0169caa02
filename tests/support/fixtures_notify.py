"""Real receivers for notifications: an SMTP server (aiosmtpd, in this process) and an HTTP
server that records the JSON webhook calls Apprise makes."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from backupsite.celery import app as celery_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SmtpServer:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[EmailMessage]:
        return _wait(lambda: self.messages, count, timeout)


class _Recorder:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.server.messages.append(message)
        return "250 OK"


@pytest.fixture
def smtp_server(settings) -> Iterator[SmtpServer]:
    """A real SMTP server on localhost; Django's mail settings point at it."""
    from aiosmtpd.controller import Controller

    server = SmtpServer(host="127.0.0.1", port=free_port())
    controller = Controller(_Recorder(server), hostname=server.host, port=server.port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = server.host
    settings.EMAIL_PORT = server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.DEFAULT_FROM_EMAIL = "backupsite@panel.example"
    try:
        yield server
    finally:
        controller.stop()


@dataclass
class Webhook:
    port: int
    calls: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hooks/backups"

    def wait_for(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        return _wait(lambda: self.calls, count, timeout)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """An HTTP server in a thread that answers 200 to every POST and keeps its JSON body."""
    hook = Webhook(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            hook.calls.append(json.loads(self.rfile.read(length) or b"{}"))
            hook.paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def eager_tasks(settings) -> Iterator[None]:
    """Celery tasks run in this process when sent (notifications are sent on commit)."""
    settings.SITE_URL = "https://panel.example"
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = False
    try:
        yield
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous
        # Sending eagerly still builds the producer pool, bound to the broker of that moment:
        # drop it so that a later test's broker fixture takes effect.
        celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]
        celery_app._pool = None  # type: ignore[attr-defined]


def _wait(get: Callable[[], list[Any]], count: int, timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    while len(get()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return list(get())

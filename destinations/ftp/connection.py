"""The synchronous API: FtpConnection, one logged-in connection that drives its own asyncio
event loop, retrying transient failures with backoff and jitter and resuming uploads where
that is provably safe; connect_once, the single attempt of Validate."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from types import TracebackType
from typing import BinaryIO, TypeVar

import aioftp

from .control import _Control, _UploadProgress
from .errors import (
    ConnectFailed,
    FtpError,
    FtpTimeout,
    PathRefused,
    PermanentError,
    TransientError,
    _reply_code,
    _reply_error,
    _scrub,
)
from .interface import FtpSettings, RemoteEntry
from .leases import Lease
from .paths import _clean_directory, _join, clean_path
from .transfers import BLOCK_SIZE, _DataChannel

logger = logging.getLogger(__name__)

RETRY_BASE_DELAY = 1.0  # seconds before the first retry; doubles each time, with jitter
RETRY_MAX_DELAY = 30.0
RESUME_CHECK_BYTES = 64 * 1024  # tail of a partial upload compared before resuming it

T = TypeVar("T")


def _retry_delay(attempt: int) -> float:
    delay = min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2 ** max(0, attempt - 1))
    return random.uniform(delay / 2, delay)


def _is_transient(exc: FtpError) -> bool:
    return isinstance(exc, TransientError | FtpTimeout | ConnectFailed)


async def _guarded(control: _Control, operation: Awaitable[T], what: str) -> T:
    """Run one protocol step; translate whatever it raises into an FtpError."""
    try:
        return await operation
    except FtpError:
        raise
    except aioftp.StatusCodeError as exc:
        if _reply_code(exc) == "421":  # the server is closing the session
            control.broken = True
        raise _reply_error(exc, what) from None
    except TimeoutError:
        control.broken = True
        raise FtpTimeout(
            f"the server stopped answering while {what} (nothing for {control.timeout:g} s)",
            hint="The server or the network may be overloaded; the timeout is a destination setting.",
        ) from None
    except (OSError, EOFError, ssl.SSLError) as exc:
        control.broken = True
        raise TransientError(f"the connection to {control.where} was lost while {what}: {exc}") from None
    except (ValueError, IndexError) as exc:  # a reply we could not parse (PASV, EPSV, PWD...)
        control.broken = True
        raise PermanentError(f"the server sent an unexpected reply while {what}: {exc}") from None


class _UploadWriter:
    """What `open_upload` yields: buffered writes into one STOR."""

    def __init__(
        self, connection: FtpConnection, control: _Control, channel: _DataChannel, what: str
    ) -> None:
        self._connection = connection
        self._control = control
        self._channel = channel
        self._what = what
        self._buffer = bytearray()
        self.bytes_written = 0
        self.stored: int | None = None

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.bytes_written += len(data)
        if len(self._buffer) >= BLOCK_SIZE:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            block, self._buffer = self._buffer, bytearray()  # handed over, not copied
            self._connection._run(self._control, self._channel.write(block), self._what)


class FtpConnection:
    """One logged-in FTP control connection; see RemoteStore for the operations.

    Opening it connects and logs in right away (retrying transient failures up to
    `settings.retries` times), so `root`, `system`, `features` and `fingerprint` are set.
    A dropped connection is reopened by the next operation.
    """

    def __init__(
        self,
        settings: FtpSettings,
        *,
        lease: Lease | None = None,
        create_root: bool = False,
        single_attempt: bool = False,
    ) -> None:
        self.settings = settings
        self.lease = lease
        self.root = ""
        self.system = ""
        self.features: frozenset[str] = frozenset()
        self.fingerprint: str | None = None
        self._directory = _clean_directory(settings.directory)
        self._create_root = create_root
        self._single_attempt = single_attempt
        self._resume_refused = False  # the server refused to resume an upload: never ask again
        self._control: _Control | None = None
        self._closed = False
        self._loop = asyncio.new_event_loop()
        try:
            self._with_retries("connecting", self._connected)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        user = f"{self.settings.username}@" if self.settings.username else ""
        return f"<FtpConnection ftp://{user}{self.settings.host}:{self.settings.port}{self.root}>"

    def __enter__(self) -> FtpConnection:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- plumbing

    def _connected(self) -> _Control:
        if self._closed:
            raise FtpError("this FTP connection is closed")
        if self._control is not None and not self._control.broken:
            return self._control
        self._drop()
        control = _Control(self.settings)
        try:
            self._run(control, control.open(self._directory, create_root=self._create_root), "connecting")
        except BaseException:
            control.close()
            raise
        if self._control is None and not self.root:
            logger.debug("connected to %s (%s), root %s", control.where, control.system, control.root)
        self._control = control
        self.root = control.root
        self.system = control.system
        self.features = control.features
        self.fingerprint = control.fingerprint
        return control

    def _drop(self) -> None:
        control, self._control = self._control, None
        if control is not None:
            control.close()

    def _run(self, control: _Control, operation: Awaitable[T], what: str) -> T:
        try:
            return self._loop.run_until_complete(_guarded(control, operation, what))
        except FtpError as exc:
            raise _scrub(exc, self.settings.password) from None

    def _may_retry(self, exc: FtpError, attempt: int) -> bool:
        if self._single_attempt or not _is_transient(exc):
            return False
        return self.settings.retries == 0 or attempt <= self.settings.retries

    def _pause(self, exc: FtpError, attempt: int, what: str) -> None:
        if self._control is not None and self._control.broken:
            self._drop()
        delay = _retry_delay(attempt)
        limit = self.settings.retries or "unlimited"
        logger.warning(
            "FTP %s failed (%s); retry %d of %s in %.1f s", what, exc.message, attempt, limit, delay
        )
        time.sleep(delay)

    def _with_retries(self, what: str, action: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return action()
            except FtpError as exc:
                attempt += 1
                if not self._may_retry(exc, attempt):
                    raise
                self._pause(exc, attempt, what)

    def _call(self, what: str, operation: Callable[[_Control], Awaitable[T]]) -> T:
        def attempt() -> T:
            control = self._connected()
            return self._run(control, operation(control), what)

        return self._with_retries(what, attempt)

    def _remote(self, path: str) -> str:
        return _join(self.root, clean_path(path))

    # -- RemoteStore

    def listdir(self, path: str = "") -> list[RemoteEntry]:
        remote = self._remote(path)
        return self._call(f"listing {remote}", lambda control: control.listing(remote))

    def stat(self, path: str) -> RemoteEntry | None:
        remote = self._remote(path)
        return self._call(f"looking up {remote}", lambda control: control.lookup(remote))

    def size(self, path: str) -> int | None:
        remote = self._remote(path)
        return self._call(f"asking the size of {remote}", lambda control: control.size(remote))

    def makedirs(self, path: str) -> None:
        relative = clean_path(path)
        self._call(f"creating the folder {relative}", lambda control: control.makedirs(self.root, relative))

    def rename(self, src: str, dst: str) -> None:
        source, target = self._remote(src), self._remote(dst)

        async def rename(control: _Control) -> None:
            await control.command("RNFR " + source, "350")
            await control.command("RNTO " + target, "2xx")

        self._call(f"renaming {source} to {target}", rename)

    def remove(self, path: str) -> None:
        remote = self._remote(path)
        self._call(f"deleting {remote}", lambda control: control.command("DELE " + remote, "2xx"))

    def rmdir(self, path: str) -> None:
        remote = self._remote(path)
        self._call(f"removing the folder {remote}", lambda control: control.command("RMD " + remote, "2xx"))

    def remove_tree(self, path: str) -> None:
        """Delete a file or a folder with everything in it; a missing path is not an error."""
        relative = clean_path(path)
        if not relative:
            raise PathRefused("refusing to remove the destination directory itself")
        remote = _join(self.root, relative)
        self._call(f"removing {remote}", lambda control: control.remove_tree(remote))

    def upload_file(self, path: str, source: BinaryIO) -> int | None:
        """Upload all of `source` (seekable, read from offset 0); returns the size the server
        reports for the stored file (None when the server cannot say).

        A dropped connection or transient failure is retried: the upload resumes where the
        server's copy ends when that copy is provably this upload's (else it starts over), and
        the server's final size, when it reports one, must equal the local size. A server that
        will not resume (REST or APPE refused) gets the whole file again, from byte 0.
        """
        remote = self._remote(path)
        what = f"uploading {remote}"
        size = source.seek(0, io.SEEK_END)
        attempt = 0
        last: _UploadProgress | None = None  # the latest attempt that got as far as choosing its offset
        while True:
            progress = _UploadProgress()
            try:
                control = self._connected()
                if last is not None:
                    progress.offset = self._resume_offset(control, remote, source, size, last)
                progress.decided = True
                self._run(control, control.store(remote, source, size, progress), what)
                self._resume_refused = self._resume_refused or progress.resume_refused
                stored = self._run(control, control.size(remote), f"checking the size of {remote}")
                if stored is not None and stored != size:
                    progress.offset, progress.started = 0, False  # not resumable: start over
                    raise TransientError(
                        f"after uploading {remote} the server has {stored} bytes, not {size}"
                    )
                return stored
            except FtpError as exc:
                self._resume_refused = self._resume_refused or progress.resume_refused
                attempt += 1
                if not self._may_retry(exc, attempt):
                    raise
                if progress.decided:
                    last = progress
                self._pause(exc, attempt, what)

    def _resume_offset(
        self, control: _Control, remote: str, source: BinaryIO, size: int, last: _UploadProgress
    ) -> int:
        if not last.started:
            return last.offset  # the server never accepted that attempt: the remote copy is as before
        if self._resume_refused:
            return 0
        stored = self._run(control, control.size(remote), f"checking the size of {remote}") or 0
        if stored <= 0 or stored > min(size, last.offset + last.sent):
            return 0
        # A server that uploads into a hidden temporary file (pure-ftpd -0, ProFTPD HiddenStores)
        # leaves the previous version in place: compare the tail before trusting the prefix.
        check = min(RESUME_CHECK_BYTES, stored)
        try:
            remote_tail = self._run(
                control, control.read_range(remote, stored - check, check), f"checking the partial {remote}"
            )
        except (PermanentError, TransientError):
            if control.broken:
                raise  # the connection dropped: the next attempt looks again
            # A server that refuses REST for RETR will not resume a STOR either.
            logger.warning("could not read back the partial upload of %s: starting over", remote)
            return 0
        source.seek(stored - check)
        if remote_tail != source.read(check):
            logger.warning("partial upload of %s does not match the local file: starting over", remote)
            return 0
        logger.info("resuming the upload of %s at byte %d of %d", remote, stored, size)
        return stored

    @contextlib.contextmanager
    def open_upload(self, path: str) -> Iterator[_UploadWriter]:
        """Stream into one STOR (for non-seekable sources); on failure it raises, redo the upload."""
        remote = self._remote(path)
        what = f"uploading {remote}"

        async def start(control: _Control) -> tuple[_Control, _DataChannel]:
            return control, await control.open_data("STOR " + remote)

        control, channel = self._call(what, start)
        writer = _UploadWriter(self, control, channel, what)
        try:
            yield writer
            writer.flush()
            self._run(control, channel.finish(), what)
        except BaseException:
            self._abandon_upload(control, channel, remote)
            raise
        stored = self._run(control, control.size(remote), f"checking the size of {remote}")
        if stored is not None and stored != writer.bytes_written:
            raise TransientError(
                f"after uploading {remote} the server has {stored} bytes, not {writer.bytes_written}"
            )
        writer.stored = stored

    def _abandon_upload(self, control: _Control, channel: _DataChannel, remote: str) -> None:
        channel.abort()
        if control.broken or self._loop.is_running():
            control.broken = True
            return
        try:
            self._run(control, control.abort_transfer(channel), "abandoning an upload")
            self._run(control, control.command("DELE " + remote, "2xx"), "deleting a partial upload")
        except FtpError:
            logger.info("could not delete the partial upload %s", remote)

    def download(
        self, path: str, *, offset: int = 0, length: int | None = None
    ) -> Generator[bytes, None, None]:
        """The file's bytes from `offset`, `length` of them (None: to the end), in chunks ≤ 1 MiB."""
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        return self._download(self._remote(path), offset, length)

    def _download(self, remote: str, offset: int, length: int | None) -> Generator[bytes, None, None]:
        what = f"downloading {remote}"
        position, remaining = offset, length
        attempt = 0
        while remaining is None or remaining > 0:
            control: _Control | None = None
            channel: _DataChannel | None = None
            try:
                control = self._connected()
                channel = self._run(control, control.open_data("RETR " + remote, offset=position), what)
                while True:
                    want = BLOCK_SIZE if remaining is None else min(BLOCK_SIZE, remaining)
                    chunk = self._run(control, channel.read(want), what)
                    if not chunk:
                        self._run(control, channel.finish(), what)
                        channel = None
                        return
                    position += len(chunk)
                    if remaining is not None:
                        remaining -= len(chunk)
                    if remaining == 0:  # all wanted: stop the transfer before handing out the chunk
                        self._stop_download(control, channel)
                        channel = None
                    yield chunk
                    if channel is None:
                        return
            except FtpError as exc:
                if channel is not None:
                    channel.abort()
                    channel = None
                    if control is not None:
                        control.broken = True
                attempt += 1
                if not self._may_retry(exc, attempt):
                    raise
                self._pause(exc, attempt, what)
            finally:
                if channel is not None and control is not None:  # the consumer stopped early
                    self._stop_download(control, channel)

    def _stop_download(self, control: _Control, channel: _DataChannel) -> None:
        """End a transfer early; never raises (a failure only costs a reconnect later)."""
        if self._loop.is_running() or self._closed:
            channel.abort()
            control.broken = True
            return
        try:
            self._run(control, control.abort_transfer(channel), "stopping a download")
        except FtpError:
            control.broken = True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        control, self._control = self._control, None
        try:
            if control is not None:
                if not control.broken and not self._loop.is_running():
                    self._loop.run_until_complete(control.quit_quietly())
                control.close()
            if not self._loop.is_running():
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
                self._loop.run_until_complete(self._loop.shutdown_default_executor())
                self._loop.close()
        finally:
            if self.lease is not None:
                self.lease.release()


def connect_once(
    settings: FtpSettings, *, create_root: bool = False, lease: Lease | None = None
) -> FtpConnection:
    """One connection attempt, no retries: what "Validate" on the destination form uses.
    `lease` (released when the connection closes) is its slot under the destination's cap."""
    try:
        return FtpConnection(settings, create_root=create_root, single_attempt=True, lease=lease)
    except BaseException:
        if lease is not None:
            lease.release()
        raise

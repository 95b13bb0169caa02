"""Writing one account archive: `make_account_archive` (its file name by style, gzip through pigz or
zlib, the old form with the home folder as homedir.tar).
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from tests.support.cpanel_archives.account import _domains, _write_account, _write_home
from tests.support.cpanel_archives.content import BASE_TIME, ENCODING, ERRORS
from tests.support.cpanel_archives.manifest import GeneratedArchive, _Writer


def _archive_names(user: str, style: str, when: datetime) -> str:
    if style == "whm":
        return user
    if style == "cpmove":
        return f"cpmove-{user}"
    if style == "user_backup":
        return f"backup-{when.month}.{when.day}.{when.year}_{when:%H-%M-%S}_{user}"
    raise ValueError(f"unknown style {style!r}")


class _GzipPipe:
    """gzip through pigz when it is there (fast for the big benchmark archive), else zlib."""

    def __init__(self, path: Path, use_pigz: bool) -> None:
        self._file = path.open("wb")
        self._proc: subprocess.Popen[bytes] | None = None
        self._gz: gzip.GzipFile | None = None
        pigz = shutil.which("pigz") if use_pigz else None
        if pigz:
            self._proc = subprocess.Popen([pigz, "-6", "-n", "-c"], stdin=subprocess.PIPE, stdout=self._file)
        else:
            self._gz = gzip.GzipFile(fileobj=self._file, mode="wb", mtime=0, compresslevel=6)

    def write(self, data: bytes) -> int:
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.write(data)
        else:
            assert self._gz is not None
            self._gz.write(data)
        return len(data)

    def close(self) -> None:
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            if self._proc.wait() != 0:
                raise RuntimeError("pigz failed")
        elif self._gz is not None:
            self._gz.close()
        self._file.close()


class _Counter:
    def __init__(self, out: Any) -> None:
        self.out = out
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        self.out.write(data)
        return len(data)


def make_account_archive(
    out: str | os.PathLike[str],
    user: str,
    *,
    style: str = "whm",
    compressed: bool = True,
    homedir_tar: bool = False,
    seed: int = 0,
    size_scale: float = 1.0,
    when: datetime | None = None,
    cp_user: str | None = None,
    extra_home: Sequence[tuple[bytes, bytes | None]] = (),
) -> GeneratedArchive:
    """Write one account archive; ``out`` is a folder (the name follows ``style``) or a file path.

    ``size_scale`` 1 gives ~2.4 MB of tar; each unit adds ~1.15 MB (450 gives ~520 MB, ~74% of it
    left after gzip: photos, zips and attachments do not compress, pages, mail and SQL do).
    ``cp_user`` puts a different account inside than the one the file is named for.
    ``extra_home``: (home-relative name as bytes, content, or None for a folder) written at the
    end of the home folder, parents before what they hold.
    """
    when = when or datetime(2024, 7, 29, 13, 22, 32, tzinfo=UTC)
    stem = _archive_names(user, style, when)
    out_path = Path(out)
    if out_path.is_dir():
        out_path = out_path / (stem + (".tar.gz" if compressed else ".tar"))
    account = cp_user or user
    manifest = GeneratedArchive(
        path=out_path,
        user=account,
        name_user=user,
        top=stem + "/",
        style=style,
        compressed=compressed,
        homedir_tar=homedir_tar,
        domains=_domains(account),
    )
    rng = random.Random(f"{seed}:{account}")
    sink: Any = _GzipPipe(out_path, size_scale >= 20) if compressed else out_path.open("wb")
    counter = _Counter(sink)
    try:
        outer = tarfile.open(  # noqa: SIM115 - closed by the with below
            fileobj=counter, mode="w|", format=tarfile.GNU_FORMAT, encoding=ENCODING, errors=ERRORS
        )  # type: ignore[call-overload]
        with outer, tempfile.TemporaryFile() as inner_file:
            inner = None
            if homedir_tar:
                inner = tarfile.open(  # noqa: SIM115 - closed once the home folder is written
                    fileobj=inner_file, mode="w", format=tarfile.GNU_FORMAT, encoding=ENCODING, errors=ERRORS
                )
            writer = _Writer(manifest, outer, inner)
            writer.extra_home = extra_home
            if inner is not None:
                tar = inner

                def home() -> None:
                    _write_homedir_tar(writer, account, seed, size_scale, tar, inner_file)

            else:

                def home() -> None:
                    _write_home(writer, account, random.Random(f"{seed}:{account}:home"), seed, size_scale)

            _write_account(writer, account, rng, seed, size_scale, home=home, legacy_ssl=homedir_tar)
    finally:
        sink.close()
    manifest.uncompressed_size = counter.count
    return manifest


def _write_homedir_tar(
    w: _Writer, user: str, seed: int, scale: float, inner: tarfile.TarFile, inner_file: IO[bytes]
) -> None:
    """Old archives: the home folder as homedir.tar ("./..." names), written where homedir/ would be."""
    inner.addfile(w._info("./", tarfile.DIRTYPE, BASE_TIME, 0o711))
    w.m.add_part("homedir", "", 0)
    real_dir = w.dir

    def skip_root_dir(rel: str, **kwargs: Any) -> None:
        if rel != "homedir":  # homedir.tar holds "./" instead
            real_dir(rel, **kwargs)

    w.dir = skip_root_dir  # type: ignore[method-assign]
    try:
        _write_home(w, user, random.Random(f"{seed}:{user}:home"), seed, scale)
    finally:
        w.dir = real_dir  # type: ignore[method-assign]
    inner.close()
    info = w._info(w.top + "homedir.tar", tarfile.REGTYPE, BASE_TIME, 0o600)
    info.size = inner_file.tell()
    inner_file.seek(0)
    w.outer.addfile(info, inner_file)

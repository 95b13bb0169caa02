"""Indexing keeps up with `tar tz` on a realistic archive (the benchmark asks for >= 0.8x its rate)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from destinations.formats.cpanel import read_archive
from tests.support.cpanel_archives import make_account_archive

pytestmark = pytest.mark.slow


def _best_of(runs: int, action: object) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def test_indexing_streams_at_least_at_0_8_times_tar_tz(tmp_path: Path) -> None:
    tar = shutil.which("tar")
    if tar is None:
        pytest.skip("tar is not installed")
    made = make_account_archive(tmp_path, "bob", size_scale=40, seed=1)  # ~50 MB of tar

    def listing() -> None:
        with made.path.open("rb") as stream:
            subprocess.run([tar, "tz"], stdin=stream, stdout=subprocess.DEVNULL, check=True)

    def indexing() -> None:
        with made.path.open("rb", buffering=0) as stream:
            index = read_archive(stream)
        assert index.complete
        assert index.account == "bob"

    tar_seconds = _best_of(3, listing)
    our_seconds = _best_of(3, indexing)
    assert our_seconds <= tar_seconds / 0.8, f"read_archive {our_seconds:.2f}s vs tar tz {tar_seconds:.2f}s"

"""Benchmark results: timing tables, targets against their baselines, and saving a run's figures."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT, MiB, Run


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def runs_of(runs: Sequence[Run], method: str, dataset: str) -> list[Run]:
    return [run for run in runs if run.method == method and run.dataset == dataset and run.ok]


def med_wall(runs: Sequence[Run], method: str, dataset: str) -> float:
    return median([run.wall for run in runs_of(runs, method, dataset)])


def timing_table(runs: Sequence[Run]) -> str:
    lines = [
        "| dataset | method | n | wall s median [min-max] | client CPU s | server CPU s | background cores |",
        "|---|---|---|---|---|---|---|",
    ]
    seen: list[tuple[str, str]] = []
    for run in runs:
        if (run.dataset, run.method) not in seen:
            seen.append((run.dataset, run.method))
    for dataset, method in seen:
        group = runs_of(runs, method, dataset)
        failed = sum(1 for run in runs if run.method == method and run.dataset == dataset and not run.ok)
        if not group:
            lines.append(f"| {dataset} | {method} | 0 ({failed} failed) | - | - | - | - |")
            continue
        walls = sorted(run.wall for run in group)
        lines.append(
            f"| {dataset} | {method} | {len(group)}{f' ({failed} failed)' if failed else ''} | "
            f"{median(walls):.2f} [{walls[0]:.2f}-{walls[-1]:.2f}] | "
            f"{median([r.cpu for r in group]):.2f} | {median([r.server_cpu for r in group]):.2f} | "
            f"{median([r.background for r in group]):.2f} |"
        )
    return "\n".join(lines)


@dataclass
class Target:
    name: str
    measured: float
    baseline: float | None
    limit: float  # the measured value (or ratio, with a baseline) must not exceed this
    unit: str = "s"
    note: str = ""
    below: bool = False  # True: measured must be strictly below `limit`
    at_least: bool = False  # True: the ratio must be at least `limit`

    @property
    def ratio(self) -> float | None:
        if self.baseline is None:
            return None
        if self.at_least:
            return self.baseline / self.measured if self.measured else float("inf")
        return self.measured / self.baseline if self.baseline else float("inf")

    @property
    def passed(self) -> bool:
        value = self.ratio if self.baseline is not None else self.measured
        if value is None or value != value:  # NaN: not measured
            return False
        if self.at_least:
            return value >= self.limit
        return value < self.limit if self.below else value <= self.limit


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if value != value:
        return "n/a"
    if unit == "B":
        return f"{value / MiB:.2f} MiB"
    if unit == "count":
        return f"{value:.0f}"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:.2f} {unit}".strip()


def targets_table(targets: Sequence[Target]) -> str:
    lines = ["| target | measured | baseline | ratio | limit | result |", "|---|---|---|---|---|---|"]
    for target in targets:
        ratio = target.ratio
        if target.baseline is None:
            limit = ("< " if target.below else "<= ") + _fmt(target.limit, target.unit)
        else:
            limit = (">= " if target.at_least else "<= ") + f"{target.limit:g}x"
        lines.append(
            f"| {target.name} | {_fmt(target.measured, target.unit)} | "
            f"{_fmt(target.baseline, target.unit)}{f' ({target.note})' if target.note else ''} | "
            f"{'-' if ratio is None else f'{ratio:.3f}'} | {limit} | {'PASS' if target.passed else 'FAIL'} |"
        )
    return "\n".join(lines)


def machine_line() -> str:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs ({model}), "
        f"load {load[0]:.2f}, Python {sys.version.split()[0]}"
    )


def save_results(name: str, payload: dict[str, Any]) -> Path:
    folder = ROOT / "results"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{name}.json"
    path.write_text(json.dumps(payload, indent=1, default=str))
    return path


def heading(title: str) -> None:
    """The report's title line, with the machine it ran on."""
    print()
    print(f"## {title}, {machine_line()}")
    print()


def finish(
    name: str, args: argparse.Namespace, runs: Sequence[Run], targets: list[Target], **payload: Any
) -> int:
    """Print the targets' table; save the run (its arguments, the rest of `payload`, its runs and
    targets), print where and the verdict; the exit code (1: a target failed)."""
    print(targets_table(targets))
    path = save_results(
        name,
        {
            "machine": machine_line(),
            "args": vars(args),
            **payload,
            "runs": [vars(run) for run in runs],
            "targets": [{**vars(t), "ratio": t.ratio, "passed": t.passed} for t in targets],
        },
    )
    failed = [t for t in targets if not t.passed]
    print(f"\nresults: {path}")
    print("FAIL: " + "; ".join(t.name for t in failed) if failed else "all targets PASS")
    return 1 if failed else 0

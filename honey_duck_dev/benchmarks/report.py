"""The machine, the versions, and the results as a text table, Markdown and JSON."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from honey_duck_dev.benchmarks.checks import (
    CHECK_HEADERS,
    NOTE_CHECKS,
    CheckMeasurement,
    check_rows,
    check_summary,
)
from honey_duck_dev.benchmarks.inputs import Input
from honey_duck_dev.benchmarks.runner import Idle, Measurement
from honey_duck_dev.benchmarks.tables import (
    NOTE_CAPPED,
    NOTE_UNITS,
    RATIO_HEADERS,
    THROUGHPUT_HEADERS,
    markdown_table,
    memory_table,
    ratio_rows,
    summaries,
    text_table,
    throughput_rows,
)

PACKAGES = (
    "polars",
    "pyarrow",
    "dagster",
    "dagster-polars",
    "dagster-duckdb-polars",
    "duckdb",
    "xlsxwriter",
    "openpyxl",
    "fastexcel",
    "psycopg",
    "adbc-driver-postgresql",
    "pandas",
    "sqlalchemy",
    "confluent-kafka",
    "pymongo",
    "pymongoarrow",
)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    """CPU model, cores and memory from /proc, and the kernel."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        (
            int(line.split()[1])
            for line in _read("/proc/meminfo").splitlines()
            if line.startswith("MemTotal:")
        ),
        0,
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_kb / 2**20, 1),
        "system": f"{platform.system()} {platform.release()}",
    }


def versions() -> dict[str, str]:
    """Python's and every measured library's version."""
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def commit() -> str:
    """The repository's commit, marked when the working tree has uncommitted changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head} (with uncommitted changes)" if head and dirty else head or "unknown"


@dataclass
class Report:
    """Everything one run of the runner measured, with where and how."""

    command: str
    idle: Idle
    inputs: list[Input]
    throughput: list[Measurement] = field(default_factory=list)
    memory: list[Measurement] = field(default_factory=list)
    checks: list[CheckMeasurement] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=machine)
    versions: dict[str, str] = field(default_factory=versions)
    commit: str = field(default_factory=commit)
    date: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    total_seconds: float = 0.0
    shared_workers: bool = False  # measured in long-lived workers: timings and RSS mean nothing

    @property
    def failures(self) -> list[Measurement]:
        return [m for m in self.throughput + self.memory if not m.ok]

    @property
    def check_failures(self) -> list[CheckMeasurement]:
        return [m for m in self.checks if not m.ok]

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "date": self.date,
            "commit": self.commit,
            "machine": self.machine,
            "versions": self.versions,
            "total_seconds": round(self.total_seconds, 1),
            "shared_workers": self.shared_workers,
            "idle": asdict(self.idle),
            "inputs": [
                {**asdict(i), "path": str(i.path), "arrow_mb": i.arrow_mb} for i in self.inputs
            ],
            "throughput": [m.to_json() for m in self.throughput],
            "memory": [m.to_json() for m in self.memory],
            "checks": [m.to_json() for m in self.checks],
        }


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def describe_run(report: Report) -> list[str]:
    """The context lines every report starts with."""
    m, v = report.machine, report.versions
    inputs = "; ".join(
        f"{i.rows:,} rows = {i.arrow_mb:,.1f} MB in memory, {i.file_bytes / 1e6:,.1f} MB Parquet"
        for i in report.inputs
    )
    idle = report.idle
    measured: list[Measurement | CheckMeasurement] = [
        *report.throughput,
        *report.memory,
        *report.checks,
    ]
    loads = [m.load_before for m in measured if m.load_before is not None]
    load = f"{min(loads):.1f} to {max(loads):.1f}" if loads else "not measured"
    repeats = max((m.runs for m in measured), default=1)
    return [
        f"- Run: {report.date}, commit {report.commit}, `{report.command}`,"
        f" {report.total_seconds / 60:.1f} minutes in all",
        f"- Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable),"
        f" {m['memory_gib']} GiB RAM, {m['system']}; 1-minute load average as each"
        f" measurement started: {load}"
        + (f"; each measurement the fastest of {repeats} runs" if repeats > 1 else ""),
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- Input: enriched sales (15 columns) read from Parquet: {inputs}",
        f"- Idle children: plain (python + polars imported, every child's start)"
        f" {idle.plain_rss_mb:,.0f} MB resident, {idle.plain_peak_rss_mb:,.0f} MB peak; Dagster"
        f" (dagster and honey_duck.seam imported too, then one empty Dagster run: every Dagster"
        f" row's start) {idle.dagster_rss_mb:,.0f} MB resident, {idle.dagster_peak_rss_mb:,.0f} MB"
        f" peak: Dagster and honey_duck's seam add {idle.dagster_weight_mb:,.0f} MB to every row"
        " through Dagster, before its IO manager does anything",
        *_fixed_cost(report),
        *(
            [
                "- Measured in shared worker processes (`--shared-workers`): a smoke test, peak RSS"
                " and timings are not comparable"
            ]
            if report.shared_workers
            else []
        ),
    ]


def _fixed_cost(report: Report) -> list[str]:
    """Dagster's fixed cost as the rows through Dagster measured it, each in its own child."""
    empty = [m.empty_run_seconds for m in report.throughput if m.ok and m.empty_run_seconds]
    if not empty:
        return []
    spread = f"{min(empty):.2f} to {max(empty):.2f} s" if len(empty) > 1 else f"{empty[0]:.2f} s"
    return [
        f"- Dagster's fixed cost: an empty run of the same asset (its LazyFrame unread) through"
        f" `dg.InMemoryIOManager`, in each Dagster row's child after its measured run: {spread}"
    ]


def to_text(report: Report) -> str:
    """What the runner prints at the end."""
    parts = ["", *describe_run(report), ""]
    if report.throughput:
        parts += [text_table(THROUGHPUT_HEADERS, throughput_rows(report.throughput)), ""]
        parts += [text_table(RATIO_HEADERS, ratio_rows(report.throughput)), ""]
        parts += [*summaries(report.throughput), ""]
        if any(m.capped for m in report.throughput):
            parts += [NOTE_CAPPED, ""]
    if report.memory:
        parts += [text_table(*memory_table(report.memory)), ""]
    if report.checks:
        parts += [
            text_table(CHECK_HEADERS, check_rows(report.checks)),
            "",
            *check_summary(report.checks),
            "",
        ]
    return "\n".join(parts)


def to_markdown(report: Report) -> str:
    """The results file: context, tables, summaries and how to read them."""
    parts = ["# honey_duck sink benchmarks", "", *describe_run(report), ""]
    if report.throughput:
        parts += [
            "## Throughput",
            "",
            markdown_table(THROUGHPUT_HEADERS, throughput_rows(report.throughput)),
        ]
        parts += ["", "### Ours against each baseline", ""]
        parts += [markdown_table(RATIO_HEADERS, ratio_rows(report.throughput))]
        parts += ["", *[f"- {line}" for line in summaries(report.throughput)], "", NOTE_UNITS, ""]
        if any(m.capped for m in report.throughput):
            parts += [NOTE_CAPPED, ""]
    if report.memory:
        parts += ["## Memory: a LazyFrame streamed through our sink vs collect-everything", ""]
        parts += [markdown_table(*memory_table(report.memory)), ""]
    if report.checks:
        parts += ["## Reconciliation checks: what each costs against its write", ""]
        parts += [markdown_table(CHECK_HEADERS, check_rows(report.checks)), ""]
        parts += [*[f"- {line}" for line in check_summary(report.checks)], "", NOTE_CHECKS, ""]
    return "\n".join(parts)


def write(report: Report, out: Path) -> Path:
    """Write the Markdown report to `out` and the JSON beside it; return the JSON's path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_markdown(report))
    data = out.with_suffix(".json")
    data.write_text(json.dumps(report.to_json(), indent=1) + "\n")
    return data

"""The machine, the versions, and the results as a text table, Markdown and JSON."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from honey_duck_dev.benchmarks.inputs import Input
from honey_duck_dev.benchmarks.runner import CheckMeasurement, Idle, Measurement

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
)
NOTE_CAPPED = (
    "`*` measured on fewer rows than the run's row count: per-row approaches are capped, and their"
    " rows/s and MB/s are measured at that size, not extrapolated; their peak RSS is for that"
    " smaller input, so the RSS ratio flatters them."
)
NOTE_UNITS = (
    "MB/s is the input's in-memory Arrow size (polars `estimated_size`) divided by seconds, the"
    " same basis for every approach; output MB is what landed on disk (sidecar schema files and"
    " DuckDB's database file included). Peak RSS is the child's high-water mark (`VmHWM`, not"
    " `ru_maxrss`, which Linux carries over from the parent); *over idle* subtracts the idle"
    " child's. Ratios are ours ÷ this (DuckDB has no sink of ours yet: official ÷ this):"
    " a speed ratio above 1 means ours is faster, an RSS ratio below 1 means ours is leaner."
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
# Tables
# ---------------------------------------------------------------------------------------------

THROUGHPUT_HEADERS = [
    "sink",
    "approach",
    "how",
    "rows",
    "seconds",
    "rows/s",
    "MB/s (input, in memory)",
    "peak RSS MB",
    "over idle MB",
    "output MB",
    "speed: ours ÷ this",
    "peak RSS: ours ÷ this",
]


def _num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _subject(group: Sequence[Measurement]) -> Measurement | None:
    """The approach the ratios are about: ours, or the official manager where we have none."""
    for kind in ("ours", "official"):
        for m in group:
            if m.kind == kind:
                return m
    return None


def _by_sink(measurements: Sequence[Measurement]) -> dict[str, list[Measurement]]:
    groups: dict[str, list[Measurement]] = {}
    for m in measurements:
        groups.setdefault(m.sink, []).append(m)
    return groups


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def throughput_rows(report: Report) -> list[list[str]]:
    """One table row per measurement, ratios against the sink's subject."""
    rows = []
    for group in _by_sink(report.throughput).values():
        subject = _subject(group)
        for m in sorted(group, key=lambda m: m is not subject):  # the subject first
            is_subject = m is subject
            speed = (
                None if is_subject or subject is None else _ratio(subject.rows_per_s, m.rows_per_s)
            )
            rss = None
            if not is_subject and subject is not None and subject.ok and m.ok:
                rss = _ratio(subject.peak_rss_mb, m.peak_rss_mb)
            over = m.peak_rss_mb - report.idle.peak_rss_mb if m.ok and m.peak_rss_mb else None
            rows.append(
                [
                    m.sink,
                    m.kind,
                    m.label if m.ok else f"{m.label} — FAILED: {m.error}",
                    f"{m.rows:,}" + ("*" if m.capped else ""),
                    _num(m.seconds, 2) if m.ok else "—",
                    _num(m.rows_per_s),
                    _num(m.mb_per_s, 1),
                    _num(m.peak_rss_mb) if m.ok else "—",
                    _num(over),
                    _num(m.out_bytes / 1e6, 1) if m.ok and m.out_bytes is not None else "—",
                    "—" if speed is None else f"{speed:.2f}x",
                    "—" if rss is None else f"{rss:.2f}x",
                ]
            )
    return rows


def summaries(report: Report) -> list[str]:
    """One line per sink: the subject's speed and peak RSS against each baseline."""
    lines = []
    for sink, group in _by_sink(report.throughput).items():
        subject = _subject(group)
        if subject is None or not subject.ok:
            continue
        speed, rss = [], []
        for m in group:
            if m is subject or not m.ok:
                continue
            name = m.kind + ("*" if m.capped else "")
            speed.append(f"{_ratio(subject.rows_per_s, m.rows_per_s):.2f}x {name}")
            rss.append(f"{_ratio(subject.peak_rss_mb, m.peak_rss_mb):.2f}x {name}")
        if speed:
            lines.append(
                f"{sink}: {subject.kind} is {', '.join(speed)} in rows/s; peak RSS {', '.join(rss)}"
            )
    return lines


def memory_table(report: Report) -> tuple[list[str], list[list[str]]]:
    """Peak RSS per approach with one column pair per row count, side by side."""
    sizes = sorted({m.rows for m in report.memory})
    headers = ["sink", "approach", "how"]
    for n in sizes:
        headers += [f"{n:,} rows: peak RSS MB (over idle)", f"{n:,} rows: seconds"]
    cells: dict[tuple[str, str], dict[int, Measurement]] = {}
    labels: dict[tuple[str, str], str] = {}
    for m in report.memory:
        cells.setdefault((m.sink, m.kind), {})[m.rows] = m
        labels[(m.sink, m.kind)] = m.label
    rows = []
    for (sink, kind), by_rows in cells.items():
        row = [sink, kind, labels[(sink, kind)]]
        for n in sizes:
            m = by_rows.get(n)
            if m is None or not m.ok:
                row += ["FAILED" if m else "—", "—"]
                continue
            over = m.peak_rss_mb - report.idle.peak_rss_mb  # type: ignore[operator]
            row += [f"{m.peak_rss_mb:,.0f} (+{over:,.0f})", f"{m.seconds:,.2f}"]
        rows.append(row)
    return headers, rows


CHECK_HEADERS = [
    "target",
    "writer",
    "check reads back with",
    "rows",
    "write s",
    "check s",
    "check ÷ write",
    "write peak RSS MB",
    "check peak RSS MB",
    "write anon rise MB",
    "check anon rise MB",
    "check anon rise ÷ table",
    "plain read of target s",
    "hashing pass of source s",
]
NOTE_CHECKS = (
    "Each target's write and its check run in two fresh processes, on the same input in the same"
    " run: the write as the throughput run measures ours (a one-asset `dg.materialize`), the"
    " check as the asset check does it: `compare()` of the source Parquet, scanned lazily, with"
    " what the target's own reader reads back (`readback().read(...)`, its `landing` types)."
    " Peak RSS is each process's high-water mark (`VmHWM`: imports and the empty Dagster run"
    " included, see the idle child). Anonymous rise is how far `RssAnon` rose above where it"
    " stood as the phase started (sampled every 5 ms): polars memory-maps the files it reads,"
    " whose pages count as resident but are the page cache's, so this is what the phase itself"
    " held; the table is the input's in-memory Arrow size. The last two columns are untimed"
    " extra passes after the check, to show where its time goes: the target read through the"
    " same reader and thrown away, and `figures()` (the hashing pass) of the source alone."
)


def check_rows(report: Report) -> list[list[str]]:
    """One table row per target: both phases' seconds and memory, and check ÷ write."""
    rows = []
    for m in report.checks:
        w, c = m.write, m.check
        rise = _ratio(c.anon_rise_mb, m.input_arrow_mb) if m.ok else None
        rows.append(
            [
                m.name,
                f"{m.kind}: {m.label}" if m.ok else f"{m.kind}: {m.label} — FAILED: {m.error}",
                m.reader,
                f"{m.rows:,}",
                _num(w.seconds, 2) if m.ok else "—",
                _num(c.seconds, 2) if m.ok else "—",
                "—" if m.ratio is None else f"{m.ratio:.2f}",
                _num(w.peak_rss_mb) if m.ok else "—",
                _num(c.peak_rss_mb) if m.ok else "—",
                _num(w.anon_rise_mb) if m.ok else "—",
                _num(c.anon_rise_mb) if m.ok else "—",
                "—" if rise is None else f"{rise:.2f}",
                _num(m.read_seconds, 2) if m.ok else "—",
                _num(m.source_figures_seconds, 2) if m.ok else "—",
            ]
        )
    return rows


def check_summary(report: Report) -> list[str]:
    """One line: the spread of check ÷ write over the targets that passed."""
    ratios = [(m.ratio, m.name) for m in report.checks if m.ratio is not None]
    if not ratios:
        return []
    low, high = min(ratios), max(ratios)
    return [
        f"check ÷ write: {low[0]:.2f} ({low[1]}) to {high[0]:.2f} ({high[1]}) over"
        f" {len(ratios)} targets; input {report.checks[0].input_arrow_mb:,.1f} MB in memory"
    ]


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned plain-text table, numbers right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    numeric = [bool(rows) and all(_is_numeric(r[i]) for r in rows) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if num else str(c).ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def _is_numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell == "—")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, numeric columns right-aligned."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    numeric = [bool(rows) and all(_is_numeric(r[i]) for r in rows) for i in range(len(headers))]
    rule = "|" + "|".join("---:" if n else "---" for n in numeric) + "|"
    return "\n".join([line(headers), rule, *map(line, rows)])


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
        f"- Idle child (every module imported, one empty Dagster run): {idle.peak_rss_mb:,.0f} MB"
        f" peak RSS; without the Dagster stack {idle.plain_peak_rss_mb:,.0f} MB, so Dagster and"
        f" the IO managers' imports weigh {idle.peak_rss_mb - idle.plain_peak_rss_mb:,.0f} MB",
        *(
            [
                "- Measured in shared worker processes (`--shared-workers`): a smoke test, peak RSS"
                " and timings are not comparable"
            ]
            if report.shared_workers
            else []
        ),
    ]


def to_text(report: Report) -> str:
    """What the runner prints at the end."""
    parts = ["", *describe_run(report), ""]
    if report.throughput:
        parts += [text_table(THROUGHPUT_HEADERS, throughput_rows(report)), ""]
        parts += [*summaries(report), ""]
        if any(m.capped for m in report.throughput):
            parts += [NOTE_CAPPED, ""]
    if report.memory:
        parts += [text_table(*memory_table(report)), ""]
    if report.checks:
        parts += [text_table(CHECK_HEADERS, check_rows(report)), "", *check_summary(report), ""]
    return "\n".join(parts)


def to_markdown(report: Report) -> str:
    """The results file: context, tables, summaries and how to read them."""
    parts = ["# honey_duck sink benchmarks", "", *describe_run(report), ""]
    if report.throughput:
        parts += ["## Throughput", "", markdown_table(THROUGHPUT_HEADERS, throughput_rows(report))]
        parts += ["", *[f"- {line}" for line in summaries(report)], "", NOTE_UNITS, ""]
        if any(m.capped for m in report.throughput):
            parts += [NOTE_CAPPED, ""]
    if report.memory:
        parts += ["## Memory: a LazyFrame streamed through our sink vs collect-everything", ""]
        parts += [markdown_table(*memory_table(report)), ""]
    if report.checks:
        parts += ["## Reconciliation checks: what each costs against its write", ""]
        parts += [markdown_table(CHECK_HEADERS, check_rows(report)), ""]
        parts += [*[f"- {line}" for line in check_summary(report)], "", NOTE_CHECKS, ""]
    return "\n".join(parts)


def write(report: Report, out: Path) -> Path:
    """Write the Markdown report to `out` and the JSON beside it; return the JSON's path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_markdown(report))
    data = out.with_suffix(".json")
    data.write_text(json.dumps(report.to_json(), indent=1) + "\n")
    return data

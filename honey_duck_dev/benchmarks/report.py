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

from tabulate import tabulate

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
    "pandas",
    "sqlalchemy",
    "confluent-kafka",
    "pymongo",
    "pymongoarrow",
)
NOTE_CAPPED = (
    "`*` measured on fewer rows than the run's row count: per-row approaches are capped, and their"
    " rows/s and MB/s are measured at that size, not extrapolated; their peak RSS is for that"
    " smaller input, so the RSS ratio flatters them."
)
NOTE_UNITS = (
    "*seconds* is the whole approach: for a row through Dagster (ours, official) the whole"
    " `dg.materialize` run. *write s* is that run's `handle_output` alone, from Dagster's event"
    " log (STEP_OUTPUT to the next event, logged once `handle_output` returned); *empty run s* is"
    " Dagster's fixed cost, the same asset with its LazyFrame unread through"
    " `dg.InMemoryIOManager`, run in the same child right after. A plain row (floor, naive, other"
    " raw paths) runs in a process that imports only what its code needs, never Dagster. MB/s is"
    " the input's in-memory Arrow size (polars `estimated_size`) divided by seconds, the same"
    " basis for every approach; output MB is what landed on disk (sidecar schema files and"
    " DuckDB's database file included). Peak RSS is the child's high-water mark (`VmHWM`, not"
    " `ru_maxrss`, which Linux carries over from the parent); *at start* is its resident memory"
    " (`VmRSS`) as the clock started, its imports (and for a Dagster row its empty warm-up run)"
    " included; *rise* is peak minus start, what the approach itself held. In the ratio table,"
    " ours (the official manager where honey_duck has no sink: DuckDB) is divided by each other"
    " approach: a speed ratio above 1 means ours is faster, an RSS ratio below 1 that ours is"
    " leaner. *ours' whole run ÷ it* compares ours' whole run with its whole code; *ours' write"
    " ÷ it* ours' `handle_output` with its code (with an official manager's `handle_output`)."
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
    "code",
    "rows",
    "seconds",
    "write s",
    "empty run s",
    "rows/s",
    "MB/s (input, in memory)",
    "peak RSS MB",
    "at start MB",
    "rise MB",
    "output MB",
]
RATIO_HEADERS = [
    "sink",
    "ours",
    "against",
    "its code",
    "speed: ours' whole run ÷ it",
    "speed: ours' write ÷ it",
    "peak RSS: ours ÷ it",
    "rise: ours ÷ it",
]


def _num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


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


def _write_rate(m: Measurement) -> float | None:
    """Rows per second of the write alone: a Dagster run's `handle_output`, else the code."""
    seconds = m.write_seconds if m.dagster else m.seconds
    return m.rows / seconds if m.ok and seconds else None


def throughput_rows(report: Report) -> list[list[str]]:
    """One table row per measurement, the sink's subject first."""
    rows = []
    for group in _by_sink(report.throughput).values():
        subject = _subject(group)
        for m in sorted(group, key=lambda m: m is not subject):
            ok = m.ok
            rows.append(
                [
                    m.sink,
                    m.kind,
                    m.label if ok else f"{m.label} — FAILED: {m.error}",
                    f"{m.rows:,}" + ("*" if m.capped else ""),
                    _num(m.seconds, 2) if ok else "—",
                    _num(m.write_seconds, 2) if ok else "—",
                    _num(m.empty_run_seconds, 2) if ok else "—",
                    _num(m.rows_per_s),
                    _num(m.mb_per_s, 1),
                    _num(m.peak_rss_mb) if ok else "—",
                    _num(m.start_rss_mb) if ok else "—",
                    _num(m.rise_mb),
                    _num(m.out_bytes / 1e6, 1) if ok and m.out_bytes is not None else "—",
                ]
            )
    return rows


def ratio_rows(report: Report) -> list[list[str]]:
    """Per sink, ours (or the official manager) against each other approach, by its code."""
    rows = []
    for group in _by_sink(report.throughput).values():
        subject = _subject(group)
        if subject is None or not subject.ok:
            continue
        for m in group:
            if m is subject or not m.ok:
                continue
            rows.append(
                [
                    m.sink,
                    subject.kind,
                    m.kind + ("*" if m.capped else ""),
                    m.label,
                    _times(_ratio(subject.rows_per_s, m.rows_per_s)),
                    _times(_ratio(_write_rate(subject), _write_rate(m))),
                    _times(_ratio(subject.peak_rss_mb, m.peak_rss_mb)),
                    _times(_ratio(subject.rise_mb, m.rise_mb)),
                ]
            )
    return rows


def summaries(report: Report) -> list[str]:
    """One line per sink: the subject's whole run, its write and Dagster's fixed cost, and its
    speed against each baseline, named by kind (the ratio table names their code)."""
    lines = []
    for sink, group in _by_sink(report.throughput).items():
        subject = _subject(group)
        if subject is None or not subject.ok:
            continue
        whole, write = [], []
        for m in group:
            if m is subject or not m.ok:
                continue
            name = m.kind + ("*" if m.capped else "")
            whole.append(f"{_times(_ratio(subject.rows_per_s, m.rows_per_s))} {name}")
            write.append(f"{_times(_ratio(_write_rate(subject), _write_rate(m)))} {name}")
        parts = f"whole run {_num(subject.seconds, 2)} s"
        if subject.write_seconds is not None:
            parts += f", handle_output {_num(subject.write_seconds, 2)} s"
        if subject.empty_run_seconds is not None:
            parts += f", Dagster's empty run {_num(subject.empty_run_seconds, 2)} s"
        if whole:
            lines.append(
                f"{sink}: {subject.kind} ({parts}): whole run {', '.join(whole)};"
                f" write alone {', '.join(write)} in rows/s"
            )
    return lines


def memory_table(report: Report) -> tuple[list[str], list[list[str]]]:
    """Peak RSS per approach with one column pair per row count, side by side."""
    sizes = sorted({m.rows for m in report.memory})
    headers = ["sink", "approach", "code"]
    for n in sizes:
        headers += [f"{n:,} rows: peak RSS MB (rise)", f"{n:,} rows: seconds"]
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
            row += [f"{m.peak_rss_mb:,.0f} (+{m.rise_mb:,.0f})", f"{m.seconds:,.2f}"]
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


def _aligns(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Right for a column of numbers (a dash counts as one), left for the rest."""
    numeric = [bool(rows) and all(_is_numeric(r[i]) for r in rows) for i in range(len(headers))]
    return ["right" if n else "left" for n in numeric]


def _is_numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell == "—")


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned plain-text table, numbers right-aligned."""
    aligns = _aligns(headers, rows)
    return tabulate(rows, headers, tablefmt="simple", colalign=aligns, disable_numparse=True)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown (pipe) table, numeric columns right-aligned."""

    def escaped(cells: Sequence[str]) -> list[str]:
        return [str(c).replace("|", "\\|") for c in cells]

    aligns = _aligns(headers, rows)
    body = [escaped(r) for r in rows]
    return tabulate(body, escaped(headers), tablefmt="pipe", colalign=aligns, disable_numparse=True)


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
        parts += [text_table(THROUGHPUT_HEADERS, throughput_rows(report)), ""]
        parts += [text_table(RATIO_HEADERS, ratio_rows(report)), ""]
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
        parts += ["", "### Ours against each baseline", ""]
        parts += [markdown_table(RATIO_HEADERS, ratio_rows(report))]
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

"""`--checks`: per target, our write and then the reconciliation check of what it wrote, each in
its own fresh child, on the same input: what a check costs against its write."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from honey_duck_dev.benchmarks import inputs
from honey_duck_dev.benchmarks.approaches import CHECKS, SINKS, Checked
from honey_duck_dev.benchmarks.children import Log, Workers, child, each, settle
from honey_duck_dev.benchmarks.tables import number, ratio


@dataclass
class Phase:
    """What one phase (the write, or its check) cost, in its own fresh child."""

    seconds: float | None = None
    peak_rss_mb: float | None = None  # the child's high-water mark (VmHWM), imports included
    anon_peak_mb: float | None = None  # highest anonymous resident memory (RssAnon) in the phase
    anon_rise_mb: float | None = None  # ... above where it stood as the phase started
    rss_rise_mb: float | None = None  # total resident memory's rise, mapped file pages included


@dataclass
class CheckMeasurement:
    """One target: our write, then the reconciliation check of what it wrote (same input)."""

    name: str  # the CHECKS entry
    sink: str
    kind: str
    label: str
    reader: str
    rows: int
    input_arrow_mb: float
    write: Phase
    check: Phase
    rows_written: int | None = None  # counted by the sink's independent reader after the write
    rows_checked: int | None = None  # counted by the check on the target's side
    passed: bool | None = None
    description: str | None = None
    read_seconds: float | None = None  # a plain read of the target through its reader
    source_read_seconds: float | None = None  # a plain read of the source Parquet
    source_figures_seconds: float | None = None  # the check's hashing pass of the source alone
    error: str | None = None
    load_before: float | None = None
    runs: int = 1

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and self.passed is True
            and self.rows_written == self.rows == self.rows_checked
        )

    @property
    def ratio(self) -> float | None:
        """Check seconds ÷ write seconds."""
        if not self.ok or not self.write.seconds or self.check.seconds is None:
            return None
        return self.check.seconds / self.write.seconds

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "check_over_write": self.ratio}


@dataclass(frozen=True)
class CheckTask:
    name: str
    checked: Checked
    source: inputs.Input


def plan_checks(source: inputs.Input, names: Iterable[str], log: Log) -> list[CheckTask]:
    """The `--checks` measurements: every chosen target whose sink can run here."""
    tasks = []
    for name in names:
        checked = CHECKS[name]
        reason = SINKS[checked.sink].unavailable()
        if reason:
            log(f"skipping {name}: {reason}")
        else:
            tasks.append(CheckTask(name, checked, source))
    return tasks


def _phase(found: dict[str, Any]) -> Phase:
    return Phase(**{k: v for k, v in found.items() if k in Phase.__dataclass_fields__})


def run_check(
    task: CheckTask, work: Path, keep: bool, timeout: float, shared: Workers | None = None
) -> CheckMeasurement:
    """The write in one fresh child, which leaves what it wrote; its check in another."""
    checked = task.checked
    scratch = Path(tempfile.mkdtemp(prefix=f"{task.name}_check_", dir=work))
    out = scratch / scratch.name.lower()
    load = os.getloadavg()[0]
    base = ["--check", task.name, str(task.source.path), str(out)]
    wrote = child(["--phase", "write", *base], scratch, timeout, shared)
    measured = CheckMeasurement(
        task.name,
        checked.sink,
        checked.kind,
        checked.write.label,
        checked.reader,
        task.source.rows,
        task.source.arrow_mb,
        write=_phase(wrote),
        check=Phase(),
        rows_written=wrote.get("rows_read_back"),
        error=wrote.get("error"),
        load_before=load,
    )
    if measured.error is None:
        found = child(["--phase", "check", *base], scratch, timeout, shared)
        measured.check = _phase(found)
        measured.error = found.get("error")
        measured.rows_checked = found.get("rows_read_back")
        measured.passed = found.get("passed")
        measured.description = found.get("description")
        for name in ("read_seconds", "source_read_seconds", "source_figures_seconds"):
            setattr(measured, name, found.get(name))
        if measured.error is None and not measured.passed:
            measured.error = f"the check failed: {measured.description}"
    if measured.error is None and measured.rows_written != measured.rows:
        measured.error = f"wrote {measured.rows_written} rows, expected {measured.rows}"
    return settle(measured, scratch, keep)


def run_checks(
    tasks: Sequence[CheckTask],
    work: Path,
    *,
    jobs: int,
    keep: bool,
    timeout: float,
    log: Log,
    repeat: int = 1,
    shared: Workers | None = None,
) -> list[CheckMeasurement]:
    """Run every check task; with `repeat`, each phase's fastest run and highest memory kept."""

    def best(runs: list[CheckMeasurement]) -> CheckMeasurement:
        # the run whose check was fastest carries its own extra passes and load; each phase
        # is the fastest of its runs, with the highest memory any of them saw
        measured = min(runs, key=lambda m: m.check.seconds or 0.0)
        for phase in ("write", "check"):
            phases = [getattr(m, phase) for m in runs]
            fastest = min(phases, key=lambda p: p.seconds or 0.0)
            for memory in ("peak_rss_mb", "anon_peak_mb", "anon_rise_mb", "rss_rise_mb"):
                setattr(fastest, memory, max(getattr(p, memory) or 0.0 for p in phases))
            setattr(measured, phase, fastest)
        return measured

    def measure(task: CheckTask) -> CheckMeasurement:
        return run_check(task, work, keep, timeout, shared)

    return each(tasks, measure, best, check_progress_line, repeat=repeat, jobs=jobs, log=log)


def check_progress_line(m: CheckMeasurement) -> str:
    if not m.ok:
        return f"  FAIL  {m.name:<16} {m.error}"
    return (
        f"  ok    {m.name:<16} {m.rows:>11,} rows  write {m.write.seconds:8.2f}s"
        f"  check {m.check.seconds:8.2f}s  check÷write {m.ratio:.2f}"
        f"  anon rise: write {m.write.anon_rise_mb:,.0f} MB, check {m.check.anon_rise_mb:,.0f} MB"
        f"  (load {m.load_before:.1f})"
    )


# ---------------------------------------------------------------------------------------------
# The report's table
# ---------------------------------------------------------------------------------------------


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


def check_rows(measured: Sequence[CheckMeasurement]) -> list[list[str]]:
    """One table row per target: both phases' seconds and memory, and check ÷ write."""
    rows = []
    for m in measured:
        w, c = m.write, m.check
        rise = ratio(c.anon_rise_mb, m.input_arrow_mb) if m.ok else None
        rows.append(
            [
                m.name,
                f"{m.kind}: {m.label}" if m.ok else f"{m.kind}: {m.label} — FAILED: {m.error}",
                m.reader,
                f"{m.rows:,}",
                number(w.seconds, 2) if m.ok else "—",
                number(c.seconds, 2) if m.ok else "—",
                "—" if m.ratio is None else f"{m.ratio:.2f}",
                number(w.peak_rss_mb) if m.ok else "—",
                number(c.peak_rss_mb) if m.ok else "—",
                number(w.anon_rise_mb) if m.ok else "—",
                number(c.anon_rise_mb) if m.ok else "—",
                "—" if rise is None else f"{rise:.2f}",
                number(m.read_seconds, 2) if m.ok else "—",
                number(m.source_figures_seconds, 2) if m.ok else "—",
            ]
        )
    return rows


def check_summary(measured: Sequence[CheckMeasurement]) -> list[str]:
    """One line: the spread of check ÷ write over the targets that passed."""
    ratios = [(m.ratio, m.name) for m in measured if m.ratio is not None]
    if not ratios:
        return []
    low, high = min(ratios), max(ratios)
    return [
        f"check ÷ write: {low[0]:.2f} ({low[1]}) to {high[0]:.2f} ({high[1]}) over"
        f" {len(ratios)} targets; input {measured[0].input_arrow_mb:,.1f} MB in memory"
    ]

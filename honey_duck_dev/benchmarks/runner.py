"""Plan the measurements, run each in its own child process, collect the results."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from honey_duck_dev.benchmarks import inputs
from honey_duck_dev.benchmarks.approaches import SINKS, Approach, Sink
from honey_duck_dev.benchmarks.approaches._base import address_var
from honey_duck_dev.benchmarks.children import Log, Workers, child, each, settle

MEMORY_KINDS = ("ours", "floor", "collect")  # `--memory`: streamed through ours, and baselines


@dataclass
class Measurement:
    """One approach on one input: what it cost and what landed."""

    sink: str
    kind: str
    label: str
    rows: int
    capped: bool  # measured on fewer rows than the run's row count
    input_arrow_mb: float
    dagster: bool = False  # landed through a `dg.materialize` run (ours, official)
    seconds: float | None = None  # the whole approach: for a Dagster one, the whole run
    write_seconds: float | None = None  # a Dagster run's `handle_output`, from its event log
    stopwatch_seconds: float | None = None  # our manager's own `honey_duck/write_seconds`
    empty_run_seconds: float | None = None  # Dagster's fixed cost, measured in the same child
    peak_rss_mb: float | None = None
    start_rss_mb: float | None = None  # resident as the clock started: imports, warm-up
    rows_read_back: int | None = None
    out_bytes: int | None = None
    import_seconds: float | None = None
    warmup_seconds: float | None = None
    dagster_loaded: bool | None = None  # was Dagster in the child when the approach finished
    imported_while_timed: list[str] | None = None  # packages first imported on the clock
    error: str | None = None
    load_before: float | None = None  # 1-minute load average as the child started
    runs: int = 1  # with --repeat: the fastest of this many runs is kept

    @property
    def ok(self) -> bool:
        return self.error is None and self.rows_read_back == self.rows

    @property
    def rows_per_s(self) -> float | None:
        return self.rows / self.seconds if self.ok and self.seconds else None

    @property
    def mb_per_s(self) -> float | None:
        return self.input_arrow_mb / self.seconds if self.ok and self.seconds else None

    @property
    def rise_mb(self) -> float | None:
        """How far resident memory rose above its start: what the approach itself held."""
        if not self.ok or self.peak_rss_mb is None or self.start_rss_mb is None:
            return None
        return max(self.peak_rss_mb - self.start_rss_mb, 0.0)

    def to_json(self) -> dict[str, Any]:
        figures = {"rows_per_s": self.rows_per_s, "mb_per_s": self.mb_per_s}
        return {**asdict(self), **figures, "rise_mb": self.rise_mb}


@dataclass
class Idle:
    """What the two idle children held, each imported and doing nothing else: a plain one
    (polars: every child's start) and a Dagster one (Dagster and honey_duck's seam imported,
    one empty Dagster run: every `ours` child's start)."""

    plain_rss_mb: float
    plain_peak_rss_mb: float
    dagster_rss_mb: float
    dagster_peak_rss_mb: float
    import_seconds: float  # the Dagster child's imports
    warmup_seconds: float  # ... and its one empty run

    @property
    def dagster_weight_mb(self) -> float:
        """What Dagster and honey_duck's seam add to a process, an empty run included."""
        return self.dagster_peak_rss_mb - self.plain_peak_rss_mb


def _quiet(line: str) -> None:
    """A log that drops its lines: planning logs the sinks skipped, once."""


@contextmanager
def servers(sinks: Iterable[str], log: Log) -> Iterator[None]:
    """Start, for the whole run, each server the chosen sinks need and nobody pointed us at.

    The measuring children inherit the server's address through the environment: the
    service's own variables, and `address_var(name)` with the address its clients take (a plain
    child cannot ask honey_duck's sinks for the variable's name: they import Dagster). Then
    each chosen sink's `environment` is computed here, in the parent. A server of ours is a
    private, throwaway one (PostgreSQL without fsync): every approach writes to the same
    server, so the ratios compare like with like.
    """
    from honey_duck_dev.services.lifecycle import HOST
    from honey_duck_dev.services.registry import service

    chosen = list(available(sinks, _quiet))
    needed = sorted({server for _, sink in chosen for server in sink.servers})
    saved = dict(os.environ)
    with ExitStack() as stack:
        for name in needed:
            cls = service(name)
            given = cls.given(os.environ)
            if given is not None:
                log(f"{name}: using the server at ${cls.url_var}")
            else:
                started = stack.enter_context(cls.start())
                given = started.env()
                os.environ.update(given)
                log(f"{name}: started pid {started.pid} on {HOST}:{started.port}")
            os.environ[address_var(name)] = str(cls.handle(given))
        for _, sink in chosen:
            if sink.environment is not None:
                os.environ.update(sink.environment())
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)


def server_versions(sinks: Iterable[str], log: Log) -> dict[str, str]:
    """`<sink> server` -> version, for each chosen sink that can say (its server is up)."""
    found = {}
    for name, sink in available(sinks, _quiet):
        if sink.server_version is not None:
            try:
                found[f"{name} server"] = sink.server_version()
            except Exception as exc:  # the version is context: its absence fails nothing
                log(f"{name}: no server version ({exc})")
    return found


def idle(work: Path, timeout: float, jobs: int = 1, shared: Workers | None = None) -> Idle:
    """Measure the idle children: plain (polars imported) and Dagster (Dagster and honey_duck's
    seam imported, one empty Dagster run), each in a fresh process."""

    def one(kind: str) -> dict[str, Any]:
        scratch = Path(tempfile.mkdtemp(prefix=f"idle-{kind}-", dir=work))
        try:
            # a shared worker has everything imported: the plain child needs a fresh process
            return child(["--idle", kind], scratch, timeout, None if kind == "plain" else shared)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    with ThreadPoolExecutor(max_workers=min(jobs, 2)) as pool:
        plain, dagster = pool.map(one, ("plain", "dagster"))
    for run in (plain, dagster):
        if "error" in run:
            raise RuntimeError(f"the idle child failed: {run['error']}")
    return Idle(
        plain["rss_mb"],
        plain["peak_rss_mb"],
        dagster["rss_mb"],
        dagster["peak_rss_mb"],
        dagster["import_seconds"],
        dagster["warmup_seconds"],
    )


def effective_cap(approach: Approach, naive_cap: int) -> int | None:
    """The most rows this approach is measured on (None: all of them)."""
    caps = [c for c in (approach.cap, naive_cap if approach.per_row else None) if c]
    return min(caps) if caps else None


@dataclass(frozen=True)
class Task:
    sink: str
    kind: str
    approach: Approach
    source: inputs.Input
    full_rows: int


def available(sinks: Iterable[str], log: Log) -> Iterator[tuple[str, Sink]]:
    """The chosen sinks that can run here; each one skipped is logged with its reason."""
    for name in sinks:
        sink = SINKS[name]
        reason = sink.unavailable()
        if reason:
            log(f"skipping {name}: {reason}")
        else:
            yield name, sink


def plan(
    source: inputs.Input, sinks: Iterable[str], kinds: Iterable[str], naive_cap: int, log: Log
) -> list[Task]:
    """The throughput measurements: every chosen approach of every chosen, available sink."""
    tasks, kinds = [], list(kinds)
    for name, sink in available(sinks, log):
        for kind, approach in sink.approaches.items():
            if kind not in kinds:
                continue
            cap = effective_cap(approach, naive_cap)
            fed = inputs.head(source, cap) if cap else source
            tasks.append(Task(name, kind, approach, fed, source.rows))
    return tasks


def plan_memory(
    source: inputs.Input,
    sinks: Iterable[str],
    kinds: Iterable[str] = MEMORY_KINDS,
    log: Log = print,
) -> list[Task]:
    """The `--memory` measurements: ours streamed, the streaming floor, and collect-everything."""
    tasks, kinds = [], list(kinds)
    for name, sink in available(sinks, log):
        for kind in (k for k in MEMORY_KINDS if k in kinds):
            approach = sink.collect if kind == "collect" else sink.approaches.get(kind)
            if approach is not None:
                tasks.append(Task(name, kind, approach, source, source.rows))
    return tasks


def run_task(
    task: Task, work: Path, keep: bool, timeout: float, shared: Workers | None = None
) -> Measurement:
    """Measure one task in a fresh child; its output folder is removed unless `keep`."""
    scratch = Path(tempfile.mkdtemp(prefix=f"{task.sink}_{task.kind}_", dir=work))
    # Unique per measurement and a plain identifier, so a server-backed sink can name its
    # table or index after it.
    out = scratch / scratch.name.lower()
    load = os.getloadavg()[0]
    args = ["--sink", task.sink, "--approach", task.kind, str(task.source.path), str(out)]
    found = child(args, scratch, timeout, shared)
    measured = Measurement(
        task.sink,
        task.kind,
        task.approach.label,
        task.source.rows,
        task.source.rows < task.full_rows,
        task.source.arrow_mb,
        task.approach.dagster,
        **{k: v for k, v in found.items() if k in Measurement.__dataclass_fields__},
        load_before=load,
    )
    if measured.error is None and measured.rows_read_back != measured.rows:
        measured.error = f"read back {measured.rows_read_back} rows, expected {measured.rows}"
    plain_but_dagster = task.approach.dagster is False and measured.dagster_loaded
    if measured.error is None and shared is None and plain_but_dagster:
        # a plain approach that pulled Dagster in carries its weight: that floor is no floor
        measured.error = f"{task.sink} {task.kind} is plain code but its process imported Dagster"
    return settle(measured, scratch, keep)


def run_all(
    tasks: Sequence[Task],
    work: Path,
    *,
    jobs: int,
    keep: bool,
    timeout: float,
    log: Log,
    repeat: int = 1,
    shared: Workers | None = None,
) -> list[Measurement]:
    """Run every task (one at a time unless `jobs` > 1: parallel runs are smoke tests only)."""

    def best(runs: list[Measurement]) -> Measurement:
        # The fastest run is the one least disturbed by anything else on the machine; peak RSS
        # hardly varies between runs, and the highest one seen is reported, with its start.
        fastest = min(runs, key=lambda m: m.seconds or 0.0)
        heaviest = max(runs, key=lambda m: m.peak_rss_mb or 0.0)
        fastest.peak_rss_mb, fastest.start_rss_mb = heaviest.peak_rss_mb, heaviest.start_rss_mb
        return fastest

    def measure(task: Task) -> Measurement:
        return run_task(task, work, keep, timeout, shared)

    return each(tasks, measure, best, progress_line, repeat=repeat, jobs=jobs, log=log)


def progress_line(m: Measurement) -> str:
    """One line per finished measurement, printed as the run goes."""
    if not m.ok:
        return f"  FAIL  {m.sink:<15} {m.kind:<13} {m.error}"
    write = f" (write {m.write_seconds:.2f}s)" if m.write_seconds is not None else ""
    return (
        f"  ok    {m.sink:<15} {m.kind:<13} {m.rows:>11,} rows {m.seconds:8.2f}s{write}"
        f" {m.rows_per_s:>12,.0f} rows/s  peak RSS {m.peak_rss_mb:>7,.0f} MB"
        f"  (load {m.load_before:.1f})"
    )


def default_work() -> Path:
    """`$HONEY_DUCK_HOME/output/benchmarks` (the home defaults to the repository's `data/`)."""
    from honey_duck.environments import HOME_VAR, REPO_ROOT

    home = os.environ.get(HOME_VAR) or REPO_ROOT / "data"
    return Path(home) / "output" / "benchmarks"

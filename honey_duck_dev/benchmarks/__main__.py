"""Benchmark every sink against its baselines: `python -m honey_duck_dev.benchmarks --help`."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from honey_duck_dev.benchmarks import checks, children, inputs, report, runner, tables
from honey_duck_dev.benchmarks.approaches import APPROACHES, CHECKS, KINDS, SINK_GROUPS, SINKS
from honey_duck_dev.services.lifecycle import raise_interrupt

DEFAULT_ROWS = 1_000_000
MEMORY_ROWS = (1_000_000, 10_000_000)
MEMORY_SINKS = ("json", "csv", "feather", "postgres")
NAIVE_CAP = 200_000
EXAMPLES = """\
examples (`python3 tasks.py bench ARGS` runs this in the project's .venv; BENCHMARKS.md has
the command behind each of its tables):
  python3 tasks.py bench                                  1M rows, every sink and approach
  python3 tasks.py bench --sinks postgres --repeat 3      PostgreSQL: ours, the batched ADBC
                                                          floor, to_dicts + executemany,
                                                          pandas to_sql, psycopg COPY, psql
  python3 tasks.py bench --sinks postgres --rows 10M      the same at 10M rows
  python3 tasks.py bench --sinks kafka                    Kafka: ours, the bare producer (with
                                                          and without ours' headers), and the
                                                          naive loops: produce + poll(0) per
                                                          row, and produce + flush per row
  python3 tasks.py bench --sinks monthly --repeat 3       24 monthly partitions in one
                                                          single-run range, against polars'
                                                          one-pass partitioned sink
  python3 tasks.py bench --memory                         peak RSS at 1M and 10M rows
  python3 tasks.py bench --checks                         per target: our write, then the
                                                          reconciliation check of what it
                                                          wrote (check seconds ÷ write seconds)
"""


def _at_least_one(text: str) -> int:
    """An argparse type: a whole number of runs, 1 or more."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def row_count(text: str) -> int:
    """`2000`, `2_000`, `200k` or `10M`."""
    text = text.strip().replace("_", "").replace(",", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    number = int(text[:-1] if scale > 1 else text) * scale
    if number < 1:
        raise argparse.ArgumentTypeError("a row count is at least 1")
    return number


def names(
    allowed: Sequence[str], groups: Mapping[str, Sequence[str]] | None = None
) -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated subset of `allowed`, a group standing for its members."""
    groups = groups or {}

    def parse(text: str) -> list[str]:
        chosen = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in chosen if n not in allowed and n not in groups]
        if unknown:
            choices = [*allowed, *groups]
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {choices}")
        expanded = [m for n in chosen for m in groups.get(n, (n,))]
        return list(dict.fromkeys(expanded))

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m honey_duck_dev.benchmarks",
        description="Throughput and peak memory of every sink: our IO manager (its whole Dagster"
        " run, its own handle_output, and Dagster's fixed cost apart), the naive per-row code"
        " people write, the official Dagster IO manager, and the target's own bulk path, each"
        " in a fresh process (plain code in one without Dagster), on the same generated sales."
        " What each sink measures is honey_duck_dev/benchmarks/approaches/<word>.py.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--rows",
        type=lambda t: [row_count(x) for x in t.split(",")],
        help=f"sales rows (default {DEFAULT_ROWS:,}; with --memory a list,"
        f" default {','.join(map(str, MEMORY_ROWS))}); accepts 200k, 10M",
    )
    p.add_argument(
        "--sinks",
        type=names(list(SINKS), SINK_GROUPS),
        help=f"comma-separated, default all of {','.join(SINKS)}; "
        + "; ".join(f"{g} stands for {','.join(m)}" for g, m in SINK_GROUPS.items())
        + " (partitioned writes: ours against polars' one-pass partitioned sink)",
    )
    p.add_argument(
        "--approaches",
        type=names([*APPROACHES, "collect"]),
        help="ours (our IO manager), naive (per-row code), official (the official Dagster IO"
        " manager), floor (the target's fastest raw path), or another approach a sink adds"
        f" beside them: {', '.join(a for a in APPROACHES if a not in KINDS)}; default: all"
        f" of them; with --memory: {','.join(runner.MEMORY_KINDS)}",
    )
    p.add_argument(
        "--naive-cap",
        type=row_count,
        default=NAIVE_CAP,
        help=f"most rows a naive per-row approach is measured on (default {NAIVE_CAP:,})",
    )
    p.add_argument(
        "--memory",
        action="store_true",
        help="instead of throughput: peak RSS of ours streaming a LazyFrame vs collect-everything,"
        " at each --rows size side by side",
    )
    p.add_argument(
        "--memory-sinks",
        type=names([s for s, sink in SINKS.items() if sink.collect]),
        default=list(MEMORY_SINKS),
        help=f"sinks for --memory (default {','.join(MEMORY_SINKS)})",
    )
    p.add_argument(
        "--checks",
        action="store_true",
        help="instead of throughput: per target, our write (as the `ours` approaches measure it)"
        " and then the reconciliation check of what it wrote (the target read back through its"
        " own reader, compared with the source), each in its own fresh process: seconds, check ÷"
        " write, peak RSS and anonymous memory of each",
    )
    p.add_argument(
        "--check-sinks",
        type=names(list(CHECKS)),
        default=list(CHECKS),
        help=f"targets for --checks (default all of {','.join(CHECKS)}; a server-backed one"
        " without its server is skipped)",
    )
    p.add_argument(
        "--work",
        type=Path,
        help="folder for the cached inputs and each run's output"
        " (default $HONEY_DUCK_HOME/output/benchmarks, i.e. data/output/benchmarks)",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="Markdown results file, JSON beside it (default WORK/results.md, or"
        " WORK/memory.md with --memory, WORK/checks.md with --checks)",
    )
    p.add_argument(
        "--repeat",
        type=_at_least_one,
        default=1,
        help="runs per measurement, the fastest kept (default 1)",
    )
    p.add_argument("--keep", action="store_true", help="keep what each approach wrote")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="measurements at once (default 1; more is for smoke tests: timings then mean nothing)",
    )
    p.add_argument(
        "--shared-workers",
        action="store_true",
        help="run the measurements in --jobs long-lived worker processes that import and warm"
        " up once, instead of a fresh process each: for smoke tests (peak RSS and timings then"
        " mean nothing)",
    )
    p.add_argument("--timeout", type=float, default=3600, help="seconds per measurement")
    p.add_argument(
        "--list",
        action="store_true",
        help="print every approach of every sink (its process, its code, the rows it is"
        " measured on) as a Markdown table, and measure nothing",
    )
    return p


def main(argv: Sequence[str] | None = None, workers: children.Workers | None = None) -> int:
    """Run the benchmarks, print the table, write the results; 1 if any approach failed.

    `workers`: shared workers to use with `--shared-workers` instead of starting new ones.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.list:
        print(tables.catalogue(args.naive_cap))
        return 0
    if threading.current_thread() is threading.main_thread():
        # A SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C: the servers started are stopped.
        signal.signal(signal.SIGTERM, raise_interrupt)
    started = time.perf_counter()
    work = (args.work or runner.default_work()).resolve()
    runs = work / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    sizes = args.rows or (list(MEMORY_ROWS) if args.memory else [DEFAULT_ROWS])
    if not args.memory and len(sizes) != 1:
        parser().error("--rows takes one count, or a list with --memory")
    if args.memory and args.checks:
        parser().error("--memory and --checks are separate runs")

    def log(line: str) -> None:
        print(line, flush=True)

    with children.workers(args.jobs, args.shared_workers, workers) as shared:
        result = measure(args, argv, work, runs, sizes, shared, log)
    result.total_seconds = time.perf_counter() - started
    default = "memory.md" if args.memory else "checks.md" if args.checks else "results.md"
    out = args.out or work / default
    log(report.to_text(result))
    data = report.write(result, out)
    log(f"wrote {out} and {data}")
    for failed in result.failures:
        log(f"FAILED {failed.sink} {failed.kind}: {failed.error}")
    for checked in result.check_failures:
        log(f"FAILED {checked.name} check: {checked.error}")
    return 1 if result.failures or result.check_failures else 0


def measure(
    args: argparse.Namespace,
    argv: Sequence[str],
    work: Path,
    runs: Path,
    sizes: Sequence[int],
    shared: children.Workers | None,
    log: Callable[[str], None],
) -> report.Report:
    """The inputs, the servers, the idle children, then every measurement `args` asks for."""
    # Inputs and servers first: shared workers warm up meanwhile (the idle child waits for one).
    prepared = [inputs.prepare(work / "cache", n, log=log) for n in sizes]
    chosen = args.memory_sinks if args.memory else args.sinks or list(SINKS)
    if args.checks:
        chosen = list(dict.fromkeys(CHECKS[name].sink for name in args.check_sinks))
    with runner.servers(chosen, log):
        log("measuring the idle children (plain, and with Dagster)")
        idle = runner.idle(runs, args.timeout, args.jobs, shared)
        command = shlex.join(["python", "-m", "honey_duck_dev.benchmarks", *argv])
        result = report.Report(
            command=command, idle=idle, inputs=prepared, shared_workers=shared is not None
        )
        result.versions.update(runner.server_versions(chosen, log))
        options = {"jobs": args.jobs, "keep": args.keep, "timeout": args.timeout, "log": log}
        options.update(repeat=args.repeat, shared=shared)
        if args.checks:
            (source,) = prepared
            tasks = checks.plan_checks(source, args.check_sinks, log)
            log(f"checks: {source.rows:,} rows, {len(tasks)} targets, a write and a check each")
            result.checks = checks.run_checks(tasks, runs, **options)
        elif args.memory:
            for source in prepared:
                log(f"memory: {source.rows:,} rows")
                kinds = args.approaches or runner.MEMORY_KINDS
                tasks = runner.plan_memory(source, chosen, kinds, log)
                result.memory += runner.run_all(tasks, runs, **options)
        else:
            (source,) = prepared
            kinds = args.approaches or APPROACHES
            tasks = runner.plan(source, chosen, kinds, args.naive_cap, log)
            log(f"throughput: {source.rows:,} rows, {len(tasks)} measurements")
            result.throughput = runner.run_all(tasks, runs, **options)
    return result


if __name__ == "__main__":
    sys.exit(main())

"""One measurement in a fresh process, so its peak RSS is its own.

Usage (the runner calls it; run by hand to debug one approach):
    python -m honey_duck_dev.benchmarks.one --sink csv --approach ours SOURCE OUT RESULT
    python -m honey_duck_dev.benchmarks.one --idle plain|dagster RESULT
    python -m honey_duck_dev.benchmarks.one --check csv --phase write SOURCE OUT RESULT
    python -m honey_duck_dev.benchmarks.one --check csv --phase check SOURCE OUT RESULT

`--check` (the runner's `--checks` mode) measures a write and the reconciliation check of what
it wrote in two fresh processes, one per phase: the write leaves what it wrote for the check,
and the check removes it (a server's table, topic or database) when it is done.

A child that measures plain code (a floor, a naive loop, a bare client) imports polars and the
modules its approach names, never Dagster, and says so (`dagster_loaded`); a child that runs
Dagster imports Dagster and honey_duck's seam too and runs one empty Dagster run before its
clock starts. The two idle children (`--idle plain`, `--idle dagster`) show each start.

With `--shared-workers` the runner instead keeps a few long-lived worker processes that import
and warm up once (`warm_worker`) and take one measurement after another (`in_worker`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MB."""
    # Linux carries ru_maxrss across fork and exec: a child started by a parent that once held
    # 3 GB reports at least 3 GB. VmHWM is the high-water mark of this program's own memory.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # kB on Linux


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


class Sampler:
    """Resident memory sampled every 5 ms in a thread, from one phase's start to `stop()`.

    Both the total (`VmRSS`) and the anonymous part (`RssAnon`): polars memory-maps the files it
    reads, and their mapped pages (the page cache, given back under pressure) count as resident,
    so the anonymous memory is what a phase itself holds. Rises are above the phase's start.
    """

    def __init__(self) -> None:
        self.start = {f: _status_kib(f) for f in ("VmRSS", "RssAnon")}
        self.peak = dict(self.start)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        for f in self.peak:
            self.peak[f] = max(self.peak[f], _status_kib(f))

    def _run(self) -> None:
        while not self._done.wait(0.005):
            self._sample()

    def stop(self) -> dict[str, float]:
        """`anon_peak_mb`, `anon_rise_mb` and `rss_rise_mb` of the phase, in MB."""
        self._done.set()
        self._thread.join()
        self._sample()
        return {
            "anon_peak_mb": self.peak["RssAnon"] * 1024 / 1e6,
            "anon_rise_mb": (self.peak["RssAnon"] - self.start["RssAnon"]) * 1024 / 1e6,
            "rss_rise_mb": (self.peak["VmRSS"] - self.start["VmRSS"]) * 1024 / 1e6,
        }


def _bytes_under(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def rss_mb() -> float:
    """Resident memory of this process now (`VmRSS`), in MB."""
    return _status_kib("VmRSS") * 1024 / 1e6


def _new_packages(loaded: set[str]) -> list[str]:
    """Packages outside the standard library first imported since `loaded`: imports an
    approach should declare, so that they are not timed as writing."""
    before = {name.partition(".")[0] for name in loaded}
    now = {name.partition(".")[0] for name in sys.modules}
    return sorted(n for n in now - before - sys.stdlib_module_names if not n.startswith("_"))


_warmed: dict[str, Any] = {}  # a shared worker's own imports and warm-up, done once


def prepare(modules: Sequence[str], dagster: bool) -> dict[str, Any]:
    """Import `modules` and, for a Dagster approach, run one empty Dagster run: before the
    clock starts, so neither is timed as writing; a shared worker did both once already."""
    if _warmed:
        return dict(_warmed)
    from honey_duck_dev.benchmarks.approaches._dagster import warm_up

    start = time.perf_counter()
    for module in modules:
        importlib.import_module(module)
    result: dict[str, Any] = {"import_seconds": time.perf_counter() - start}
    if dagster:
        start = time.perf_counter()
        warm_up()
        result["warmup_seconds"] = time.perf_counter() - start
    return result


def idle(kind: str) -> dict[str, Any]:
    """An idle child: `plain` imports polars and nothing else (every child's start), `dagster`
    Dagster and honey_duck's seam too, then runs one empty Dagster run (every `ours` child's
    start); the memory each holds then, and its high-water mark."""
    from honey_duck_dev.benchmarks.approaches._base import BASE_IMPORTS, DAGSTER_IMPORTS

    dagster = kind == "dagster"
    result = prepare([*BASE_IMPORTS, *(DAGSTER_IMPORTS if dagster else ())], dagster)
    return result | {"rss_mb": rss_mb(), "peak_rss_mb": peak_rss_mb()}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Import, warm up, run the approach timed, sample peak RSS, then count what landed."""
    if args.idle:
        return idle(args.idle)
    if args.check:
        return measure_check(args)
    from honey_duck_dev.benchmarks.approaches import SINKS

    sink = SINKS[args.sink]
    approach = sink.collect if args.approach == "collect" else sink.approaches[args.approach]
    if approach is None:
        raise KeyError(f"sink {args.sink} has no collect-everything approach")
    result = prepare(approach.child_imports, approach.dagster)
    source, out = Path(args.source), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:  # what the approach left on a server is removed whether it succeeded or not
        result["start_rss_mb"] = rss_mb()
        loaded = set(sys.modules)
        start = time.perf_counter()
        figures = approach.run(source, out)
        result["seconds"] = time.perf_counter() - start
        result["peak_rss_mb"] = peak_rss_mb()  # before reading back: not part of the write
        result["dagster_loaded"] = "dagster" in sys.modules
        result["imported_while_timed"] = _new_packages(loaded)
        result.update(figures or {})
        if approach.empty_run is not None:  # Dagster's fixed cost, in the same process
            result["empty_run_seconds"] = approach.empty_run(source)
        result["rows_read_back"] = sink.count(out)
        # a server sink's bytes are on the server, where sizes are not comparable with files
        result["out_bytes"] = _bytes_under(out) if not sink.servers else None
    finally:
        if sink.cleanup is not None:
            sink.cleanup(out)
    return result


def measure_check(args: argparse.Namespace) -> dict[str, Any]:
    """`--phase write`: the write, left in place; `--phase check`: its check, then the cleanup."""
    from honey_duck_dev.benchmarks.approaches import CHECKS, SINKS
    from honey_duck_dev.benchmarks.approaches._base import DAGSTER_IMPORTS

    checked = CHECKS[args.check]
    sink = SINKS[checked.sink]
    # both phases import what the write does, and the check's reader and comparison
    modules = [*checked.write.child_imports, *DAGSTER_IMPORTS, "honey_duck.seam.reconcile"]
    result = prepare(list(dict.fromkeys(modules)), dagster=True)
    source, out = Path(args.source), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.phase == "write":
        try:
            sampler, start = Sampler(), time.perf_counter()
            checked.write.run(source, out)
            result["seconds"] = time.perf_counter() - start
            result.update(sampler.stop())
            result["peak_rss_mb"] = peak_rss_mb()
            result["rows_read_back"] = sink.count(out)
        except BaseException:  # the check phase will not run: nothing is left on a server
            if sink.cleanup is not None:
                sink.cleanup(out)
            raise
        return result
    try:
        result.update(reconcile(checked, source, out))
    finally:
        if sink.cleanup is not None:
            sink.cleanup(out)
    return result


def reconcile(checked: Any, source: Path, out: Path) -> dict[str, Any]:
    """The check of what `checked` wrote to `out`, timed and sampled; then, untimed by it, a
    plain read of each side and a hashing pass of the source, to show where its time goes."""
    import dagster as dg
    import polars as pl

    from honey_duck import seam
    from honey_duck.seam.reconcile import compare, figures
    from honey_duck_dev.benchmarks.inputs import TABLE

    key, metadata = dg.AssetKey([TABLE]), dict(checked.metadata)
    keys = [str(k) for k in metadata.get("upsert_keys", [])]  # type: ignore[attr-defined]
    sampler, start = Sampler(), time.perf_counter()
    # as the asset check does it: the target's reader and type table, the transform's LazyFrame
    readback = checked.readback(out)
    landed = seam.as_lazy(readback.read(key, metadata, None))
    found = compare(
        readback.name(key, metadata), pl.scan_parquet(source), landed, readback.landing, keys
    )
    result: dict[str, Any] = {"seconds": time.perf_counter() - start, **sampler.stop()}
    result["peak_rss_mb"] = peak_rss_mb()
    result["passed"] = found.passed
    result["description"] = found.description()
    result["rows_read_back"] = found.landed.rows if found.landed else None

    def timed(work: Any) -> float:
        start = time.perf_counter()
        work()
        return time.perf_counter() - start

    def drain(frame: pl.LazyFrame) -> None:
        for _ in frame.collect_batches():
            pass

    result["read_seconds"] = timed(lambda: drain(seam.as_lazy(readback.read(key, metadata, None))))
    result["source_read_seconds"] = timed(lambda: drain(pl.scan_parquet(source)))
    scan = pl.scan_parquet(source)
    result["source_figures_seconds"] = timed(lambda: figures(scan, scan.collect_schema()))
    return result


def parser() -> argparse.ArgumentParser:
    """The child's arguments: what to measure, and where the result goes."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sink")
    p.add_argument("--approach")
    p.add_argument(
        "--idle",
        choices=("plain", "dagster"),
        help="import (plain: polars; dagster: Dagster and honey_duck's seam too, and one empty"
        " Dagster run), nothing else",
    )
    p.add_argument("--check", help="a CHECKS entry: measure its write or its check (--phase)")
    p.add_argument("--phase", choices=("write", "check"), default="write")
    p.add_argument("paths", nargs="+", help="SOURCE OUT RESULT, or RESULT with --idle")
    return p


def _measure_or_error(args: argparse.Namespace) -> dict[str, Any]:
    try:
        return measure(args)
    except Exception as exc:
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"}


def warm_worker() -> None:
    """A shared worker's initializer: import what every approach imports and run the empty
    Dagster run, once (every measurement in it then has Dagster loaded: a smoke test's)."""
    from honey_duck_dev.benchmarks.approaches import SINKS

    approaches = [a for s in SINKS.values() for a in [*s.approaches.values(), s.collect] if a]
    modules = dict.fromkeys(m for a in approaches for m in a.child_imports)
    _warmed.update(prepare([*modules, "honey_duck.seam.reconcile"], dagster=True))


def ready() -> None:
    """A no-op task: submitting one starts a worker, which warms up before it runs it."""


def in_worker(argv: Sequence[str], env: Mapping[str, str]) -> dict[str, Any]:
    """One measurement in a shared worker, in the parent's environment as it is now."""
    # The parent sets a server's URL after the workers started: take its environment per task.
    os.environ.clear()
    os.environ.update(env)
    args = parser().parse_args([*argv, "unused"])
    if not args.idle:
        args.source, args.out, _ = args.paths
    return _measure_or_error(args)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: write the measurement as JSON to RESULT."""
    args = parser().parse_args(argv)
    if args.idle:
        (result_path,) = args.paths
    else:
        args.source, args.out, result_path = args.paths
    result = _measure_or_error(args)
    Path(result_path).write_text(json.dumps(result))
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown (thread pools, atexit hooks): it is not part of any measurement.
    os._exit(0)


if __name__ == "__main__":
    main()

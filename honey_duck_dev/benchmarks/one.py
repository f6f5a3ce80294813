"""One measurement in a fresh process, so its peak RSS is its own.

Usage (the runner calls it; run by hand to debug one approach):
    python -m honey_duck_dev.benchmarks.one --sink csv --approach ours SOURCE OUT RESULT
    python -m honey_duck_dev.benchmarks.one --idle [--plain] RESULT

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


def _warm_up() -> None:
    """Run one empty Dagster run, so Dagster's first-run lazy imports are not timed as writing."""
    import dagster as dg

    @dg.asset
    def warm_up() -> None:
        return None

    dg.materialize([warm_up], raise_on_error=True)


def _bytes_under(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


_warmed: dict[str, Any] = {}  # a shared worker's own imports and warm-up, done once


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Import, warm up, run the approach timed, sample peak RSS, then count what landed."""
    from honey_duck_dev.benchmarks.approaches import FRAMEWORK_IMPORTS, PLAIN_IMPORTS, SINKS

    if _warmed and not args.plain:  # a shared worker: its imports and warm-up are behind it
        result: dict[str, Any] = dict(_warmed)
    else:
        start = time.perf_counter()
        modules = PLAIN_IMPORTS if args.plain else PLAIN_IMPORTS + FRAMEWORK_IMPORTS
        for module in modules:
            importlib.import_module(module)
        result = {"import_seconds": time.perf_counter() - start}
        if not args.plain:
            start = time.perf_counter()
            _warm_up()
            result["warmup_seconds"] = time.perf_counter() - start
    if args.idle:
        result["peak_rss_mb"] = peak_rss_mb()
        return result
    sink = SINKS[args.sink]
    approach = sink.collect if args.approach == "collect" else sink.approaches[args.approach]
    if approach is None:
        raise KeyError(f"sink {args.sink} has no collect-everything approach")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:  # what the approach left on a server is removed whether it succeeded or not
        start = time.perf_counter()
        approach.run(Path(args.source), out)
        result["seconds"] = time.perf_counter() - start
        result["peak_rss_mb"] = peak_rss_mb()  # before reading back: not part of the write
        result["rows_read_back"] = sink.count(out)
        # a server sink's bytes are on the server, where sizes are not comparable with files
        result["out_bytes"] = _bytes_under(out) if sink.server is None else None
    finally:
        if sink.cleanup is not None:
            sink.cleanup(out)
    return result


def parser() -> argparse.ArgumentParser:
    """The child's arguments: what to measure, and where the result goes."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sink")
    p.add_argument("--approach")
    p.add_argument("--idle", action="store_true", help="import and warm up, nothing else")
    p.add_argument("--plain", action="store_true", help="idle: skip the Dagster imports")
    p.add_argument("paths", nargs="+", help="SOURCE OUT RESULT, or RESULT with --idle")
    return p


def _measure_or_error(args: argparse.Namespace) -> dict[str, Any]:
    try:
        return measure(args)
    except Exception as exc:
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"}


def warm_worker() -> None:
    """A shared worker's initializer: import everything and run the empty Dagster run, once."""
    measured = measure(parser().parse_args(["--idle", "unused"]))
    _warmed.update({k: v for k, v in measured.items() if k != "peak_rss_mb"})


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

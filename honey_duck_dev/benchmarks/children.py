"""Measurements in child processes: a fresh process each (`python -m
honey_duck_dev.benchmarks.one`), or long-lived shared workers for smoke tests; each task
repeated, its best run kept, a failure's scratch folder kept to look into."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, TimeoutError
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

Log = Callable[[str], None]


class Workers:
    """Long-lived measuring processes (`--shared-workers`): each imports and warms up once.

    For smoke tests: a fresh child per measurement costs seconds of imports and a warm-up run,
    a worker pays that once. Peak RSS is then a worker's high-water mark so far and timings
    share the worker with what ran before, so neither means anything.
    """

    def __init__(self, jobs: int) -> None:
        import multiprocessing

        from honey_duck_dev.benchmarks import one

        self._one = one
        # spawn, not fork: the parent has polars' thread pools running, which fork does not copy
        self.pool = ProcessPoolExecutor(
            max_workers=max(jobs, 1),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=one.warm_worker,
        )
        # The pool starts a worker per task submitted while none is free: one no-op each starts
        # them all now, to import and warm up while the parent prepares inputs and servers.
        for _ in range(max(jobs, 1)):
            self.pool.submit(one.ready)

    def run(self, args: Sequence[str], timeout: float) -> dict[str, Any]:
        """One measurement in a worker; its result, or the error it died of."""
        future = self.pool.submit(self._one.in_worker, list(args), dict(os.environ))
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            return {"error": f"timed out after {timeout:.0f}s (in a shared worker)"}
        except BrokenProcessPool as exc:
            return {"error": f"a shared worker died: {exc}"}

    def close(self) -> None:
        """Stop the workers: killed, since they hold nothing and exiting cleanly takes seconds."""
        # ProcessPoolExecutor has no public handle on its processes; a worker's interpreter
        # teardown (Dagster's and polars' threads) costs about 3 s, and nothing in it matters.
        processes = list(getattr(self.pool, "_processes", {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.kill()
            process.join(timeout=10)


@contextmanager
def workers(jobs: int, shared: bool, given: Workers | None = None) -> Iterator[Workers | None]:
    """Shared workers for the whole run when asked for, else None: a fresh child each time.

    `given` workers (a caller's, e.g. a test module's, reused across runs) are not closed here.
    """
    if given is not None or not shared:
        yield given if shared else None
        return
    pool = Workers(jobs)
    try:
        yield pool
    finally:
        pool.close()


def child(
    args: Sequence[str], scratch: Path, timeout: float, shared: Workers | None = None
) -> dict[str, Any]:
    """Run `honey_duck_dev.benchmarks.one` with `args`; its JSON result, or the error it died of."""
    if shared is not None:
        return shared.run(args, timeout)
    result, log = scratch / "result.json", scratch / "child.log"
    command = [sys.executable, "-m", "honey_duck_dev.benchmarks.one", *args, str(result)]
    with open(log, "w") as out:
        try:
            proc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f}s"}
    if result.exists():
        return json.loads(result.read_text())
    tail = log.read_text(errors="replace").strip().splitlines()[-3:]
    return {"error": f"child exited {proc.returncode}: {' | '.join(tail)}"}


class _Outcome(Protocol):
    error: str | None
    runs: int

    @property
    def ok(self) -> bool: ...


_T = TypeVar("_T")
_M = TypeVar("_M", bound=_Outcome)


def settle(measured: _M, scratch: Path, keep: bool) -> _M:
    """A failed measurement keeps its scratch folder (what it wrote, its log) to look into."""
    if measured.error is not None:
        measured.error += f" (log and output kept in {scratch})"
    elif not keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return measured


def each(
    tasks: Sequence[_T],
    measure: Callable[[_T], _M],
    best: Callable[[list[_M]], _M],
    line: Callable[[_M], str],
    *,
    repeat: int,
    jobs: int,
    log: Log,
) -> list[_M]:
    """`measure` every task `repeat` times, keep the first failure or else what `best` makes of
    the runs, and log its `line`: tasks in order, one at a time, or `jobs` side by side (smoke
    tests only)."""

    def one(task: _T) -> _M:
        runs = [measure(task) for _ in range(repeat)]
        failed = [m for m in runs if not m.ok]
        measured = failed[0] if failed else best(runs)
        measured.runs = repeat
        log(line(measured))
        return measured

    if jobs <= 1:
        return [one(t) for t in tasks]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, tasks))

"""`honey-duck`: materialize the pipeline headlessly, with progress and a closing summary table."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import dagster as dg

from honey_duck import environments

WHERE_KEYS = ("dagster/uri", "path", "dagster/table_name")
ROW_KEYS = (
    "dagster/row_count",
    "dagster/partition_row_count",
    "honey_duck/range_row_count",
    "row_count",
)


class _ProgressHandler(logging.Handler):
    """Prints one line per finished step or check, as the run goes."""

    def emit(self, record: logging.LogRecord) -> None:
        event = (getattr(record, "dagster_meta", None) or {}).get("dagster_event")
        if event is None:
            return
        kind = event.event_type_value
        if kind == "STEP_SUCCESS":
            seconds = event.event_specific_data.duration_ms / 1000
            print(f"  ok    {event.step_key:<40} {seconds:7.2f}s", flush=True)
        elif kind == "STEP_FAILURE":
            error = event.event_specific_data.error
            cause = error.cause.message if error and error.cause else ""
            message = (error.message if error else "") + cause
            print(f"  FAIL  {event.step_key:<40} {message.strip()}", flush=True)
        elif kind == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            status = "ok" if data.passed else "FAIL"
            name = f"check {data.asset_key.to_user_string()}:{data.check_name}"
            print(f"  {status:<5} {name}", flush=True)


@dg.logger
def progress_logger(_init_context: dg.InitLoggerContext) -> logging.Logger:
    log = logging.getLogger("honey_duck.progress")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    if not log.handlers:
        log.addHandler(_ProgressHandler())
    return log


@dataclass
class Landed:
    """What one asset's materializations added up to."""

    group: str
    rows: int | None = None
    where: str = ""
    seconds: float = 0.0
    runs: set[str] = field(default_factory=set)
    status: str = "ok"  # or "FAILED", "skipped" (downstream of a failure), "not run" (a later run)
    checks_passed: int = 0
    checks_failed: dict[str, str] = field(default_factory=dict)  # check (and partition): why

    def checks(self) -> str:
        """The summary's cell: how the asset's checks went."""
        if self.checks_failed:
            return f"FAILED {len(self.checks_failed)}"
        return f"{self.checks_passed} ok" if self.checks_passed else "-"


@dataclass
class Run:
    label: str
    keys: list[dg.AssetKey]
    partition_key: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def plan(defs: dg.Definitions, groups: Sequence[str]) -> list[Run]:
    """Order the runs: unpartitioned assets, then partitioned ranges, then one-partition runs."""
    graph = defs.resolve_asset_graph()
    selection = dg.AssetSelection.groups(*groups).upstream() if groups else dg.AssetSelection.all()
    keys = sorted(selection.resolve(graph), key=lambda k: k.to_user_string())
    flat, ranged, single = [], {}, {}
    for key in keys:
        node = graph.get(key)
        pdef = node.partitions_def
        if pdef is None:
            flat.append(key)
            continue
        policy = node.backfill_policy
        bucket = single if policy and policy.max_partitions_per_run == 1 else ranged
        bucket.setdefault(pdef, []).append(key)
    runs = [Run("unpartitioned assets", flat)] if flat else []
    for pdef, members in ranged.items():
        first, last = pdef.get_first_partition_key(), pdef.get_last_partition_key()
        tags = {
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        }
        runs.append(Run(f"partitions {first}..{last} in one run", members, tags=tags))
    for pdef, members in single.items():
        for partition in pdef.get_partition_keys():
            runs.append(Run(f"partition {partition}", members, partition_key=partition))
    return runs


def materialize(
    env: environments.Environment, groups: Sequence[str] = ()
) -> tuple[bool, dict[dg.AssetKey, Landed]]:
    """Materialize `groups` (default: everything) with their upstream assets, printing progress."""
    from honey_duck import preflight
    from honey_duck.definitions import build  # after main() has silenced Dagster's beta notices
    from honey_duck.sinks import SINKS

    defs = dg.Definitions.merge(build(env), dg.Definitions(loggers={"progress": progress_logger}))
    job = defs.resolve_implicit_global_asset_job_def()
    graph = defs.resolve_asset_graph()
    known = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    unknown = sorted(set(groups) - known)
    if unknown:
        raise ValueError(f"unknown group(s) {unknown}; groups are {sorted(known)}")
    runs = plan(defs, groups)
    selected = [key for run in runs for key in run.keys]
    for problem in (
        preflight.missing_variables(env, defs, selected),
        preflight.silent_servers(env, SINKS, {graph.get(k).group_name for k in selected}),
    ):
        if problem:
            raise ValueError(problem)
    print(f"honey_duck: environment '{env.name}', home {env.home}, {len(runs)} run(s)")
    with home_lock(env.home), run_instance(env) as instance:
        return _materialize(job, graph, runs, instance, official_readers(defs))


def official_readers(defs: dg.Definitions) -> dict[dg.AssetKey, Any]:
    """The readback of each asset landed by an official Dagster manager, which reports less
    than ours (no row count for a LazyFrame, a table name that runs its parts together)."""
    from honey_duck.seam import SinkIOManager
    from honey_duck.sinks import SINKS

    resources = defs.resources or {}
    readers = {}
    for sink in SINKS.values():
        manager = resources.get(sink.resource_key)
        if sink.readback is None or isinstance(manager, SinkIOManager):
            continue
        reader = sink.readback(manager)
        readers.update({key: reader for a in sink.assets for key in a.keys})
    return readers


@contextmanager
def run_instance(env: environments.Environment) -> Iterator[dg.DagsterInstance]:
    """The Dagster instance that records the runs: the one the UI of this home reads.

    With `DAGSTER_HOME` set, the deployment's own instance (e.g. `deploy/prod/dagster.yaml`);
    otherwise SQLite storage in `<home>/dagster_home`, which for the default home `data/` is
    the storage `python3 tasks.py dev` serves (`dagster.yaml` at the repository root), so the
    UI shows what `materialize` landed.
    """
    if os.environ.get("DAGSTER_HOME"):
        with dg.DagsterInstance.get() as instance:
            yield instance
        return
    from dagster._core.instance.ref import InstanceRef

    root = env.home / "dagster_home"
    root.mkdir(parents=True, exist_ok=True)
    ref = InstanceRef.from_dir(str(root), overrides={"telemetry": {"enabled": False}})
    with dg.DagsterInstance.from_ref(ref) as instance:
        yield instance


@contextmanager
def home_lock(home: Path) -> Iterator[None]:
    """One materialization of a home at a time; another one waits for it to finish.

    Two at once would interleave their runs on files both rewrite (the pipeline's partitioned
    Parquet storage refuses to read a half-published range, the official DuckDB manager holds
    its file for a whole step), so the second waits instead of failing half-way.
    """
    import fcntl

    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".materialize.lock", "a") as handle:  # released when the file closes
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("honey_duck: waiting for another materialization of this home", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _materialize(
    job: dg.JobDefinition,
    graph: Any,
    runs: list[Run],
    instance: dg.DagsterInstance,
    readers: dict[dg.AssetKey, Any],
) -> tuple[bool, dict[dg.AssetKey, Landed]]:
    landed: dict[dg.AssetKey, Landed] = {}
    for i, run in enumerate(runs, 1):
        print(f"[{i}/{len(runs)}] {run.label}: {len(run.keys)} asset(s)", flush=True)
        result = job.execute_in_process(
            instance=instance,
            asset_selection=run.keys,
            partition_key=run.partition_key,
            tags=run.tags,
            run_config={"loggers": {"progress": {}}},  # instead of Dagster's verbose console log
            raise_on_error=False,
        )
        _collect(result, graph, landed, readers)
        if not result.success:
            print(f"run {i} failed; see the FAIL lines above", file=sys.stderr)
            broken = {e.step_key for e in result.get_step_failure_events()}
            _mark([k for k in run.keys if k.to_python_identifier() in broken], graph, landed,
                  "FAILED")  # fmt: skip
            _mark(run.keys, graph, landed, "skipped")  # downstream of a failure
            for later in runs[i:]:
                _mark(later.keys, graph, landed, "not run")
            return False, landed
    return True, landed


def _mark(keys: Sequence[dg.AssetKey], graph: Any, landed: dict, status: str) -> None:
    """Record the assets of a failed (or never started) run that did not land."""
    for key in keys:
        entry = landed.setdefault(key, Landed(group=graph.get(key).group_name, status=status))
        if not entry.runs and entry.status == "ok":  # landed earlier, or already marked
            entry.status = status


def _collect(
    result: dg.ExecuteInProcessResult, graph: Any, landed: dict, readers: dict[dg.AssetKey, Any]
) -> None:
    seconds = {
        e.step_key: e.event_specific_data.duration_ms / 1000
        for e in result.all_events
        if e.event_type_value == "STEP_SUCCESS"
    }
    run_id = result.run_id
    for event in result.all_events:
        if event.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        data = event.event_specific_data
        entry = landed.setdefault(
            data.asset_key, Landed(group=graph.get(data.asset_key).group_name)
        )
        if data.passed:
            entry.checks_passed += 1
        else:
            where = f" ({event.partition})" if event.partition else ""
            entry.checks_failed[f"{data.check_name}{where}"] = data.description or ""
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        key = materialization.asset_key
        entry = landed.setdefault(key, Landed(group=graph.get(key).group_name))
        if run_id in entry.runs:  # a range run reports once per partition, with the same totals
            continue
        entry.runs.add(run_id)
        meta = materialization.metadata
        rows = next((meta[k].value for k in ROW_KEYS if k in meta), None)
        where = next((str(meta[k].value) for k in WHERE_KEYS if k in meta), "")
        reader = readers.get(key)
        if reader is not None:  # an official manager: ask the target what it holds
            definition = graph.get(key).assets_def.metadata_by_key.get(key, {})
            if not {"dagster/uri", "path"} & set(meta):
                where = reader.name(key, definition)
            if rows is None:
                pdef = graph.get(key).assets_def.partitions_def
                rows = _rows_held(reader, key, definition, pdef, event.partition)
        if rows is not None:
            entry.rows = (entry.rows or 0) + int(rows)
        if len(entry.runs) > 1:  # one run per partition: name the folder, not the first file
            where = str(PurePosixPath(where).parent)
        entry.where = where
        entry.seconds += seconds.get(event.step_key, 0.0)


def _rows_held(
    reader: Any,
    key: dg.AssetKey,
    metadata: Any,
    partitions_def: dg.PartitionsDefinition | None,
    partition: str | None,
) -> int:
    """Rows the target holds for `key` (one partition's when given), read back through it."""
    import polars as pl

    from honey_duck import seam

    partitions = None
    if partition is not None and partitions_def is not None:
        column = metadata.get(seam.PARTITION_EXPR)
        partitions = seam.slice_for(partitions_def, [partition], column, key.to_user_string())
    frame = reader.read(key, metadata, partitions)
    return frame.lazy().select(pl.len()).collect().item()


def summary(landed: dict[dg.AssetKey, Landed]) -> str:
    """The closing table: group, asset, rows, where it landed, seconds, checks."""
    from tabulate import tabulate

    ordered = sorted(landed.items(), key=lambda kv: (kv[1].group, kv[0].to_user_string()))
    rows = [
        (
            e.group,
            k.to_user_string(),
            "-" if e.rows is None else f"{e.rows:,}",
            e.where or ("-" if e.status == "ok" else e.status),
            f"{e.seconds:.2f}",
            e.checks(),
        )
        for k, e in ordered
    ]
    table = tabulate(
        rows,
        headers=("group", "asset", "rows", "where it landed", "seconds", "checks"),
        tablefmt="simple",
        colalign=("left", "left", "right", "left", "right", "left"),
        disable_numparse=True,  # the cells are formatted already: `1,000`, `0.04`
    )
    return "\n".join(line.rstrip() for line in table.splitlines())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="honey-duck", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("materialize", help="materialize every asset (or some groups)")
    run.add_argument("--env", choices=environments.ENVIRONMENTS, help="overrides HONEY_DUCK_ENV")
    run.add_argument(
        "--group", action="append", default=[], help="a group to land (repeatable); default all"
    )
    args = parser.parse_args(argv)
    # Beta/preview notices about Dagster APIs are for developers, not for a pipeline's output.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    started = time.perf_counter()
    try:
        env = environments.current()
        if args.env:
            env = environments.environment(args.env, env.home, env.input_dir, env.settings)
        ok, landed = materialize(env, args.group)
    except ValueError as exc:
        print(f"honey-duck: {exc}", file=sys.stderr)
        return 2
    print("\n" + summary(landed))
    failed_checks = [
        f"  {k.to_user_string()}:{name}: {why}"
        for k, e in sorted(landed.items(), key=lambda kv: kv[0].to_user_string())
        for name, why in e.checks_failed.items()
    ]
    if failed_checks:
        print("\nchecks that FAILED:\n" + "\n".join(failed_checks))
    print("\n" + outcome(landed, time.perf_counter() - started))
    return 0 if ok and not failed_checks else 1


def outcome(landed: dict[dg.AssetKey, Landed], seconds: float) -> str:
    """The closing line: how many assets landed and, after a failure, which did not."""
    done = sum(1 for e in landed.values() if e.status == "ok")
    line = f"{done} assets materialized in {seconds:.1f}s"
    failed = sorted(k.to_user_string() for k, e in landed.items() if e.status == "FAILED")
    if failed:
        line += f"; FAILED: {', '.join(failed)}"
    skipped = sum(1 for e in landed.values() if e.status in ("skipped", "not run"))
    if skipped:
        line += f"; {skipped} more not materialized because of it"
    passed = sum(e.checks_passed for e in landed.values())
    failed_checks = sum(len(e.checks_failed) for e in landed.values())
    if passed or failed_checks:
        line += f"; checks: {passed} passed"
        line += f", {failed_checks} FAILED" if failed_checks else ""
    return line


if __name__ == "__main__":
    sys.exit(main())

"""Write a frame through a sink with its reconciliation check, then check it again at will.

The sink tests use this to show that a clean write passes and that a target changed behind the
manager's back (with the target's own client) fails, naming what differs.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from honey_duck.seam.reconcile import reconcile_checks
from honey_duck.targets.files import FileIOManager

KEY = dg.AssetKey(["t", "table"])


@dataclass(frozen=True)
class Verdict:
    """One reconciliation check's evaluation."""

    passed: bool
    description: str
    metadata: dict[str, Any]


@dataclass
class Reconciled:
    """A destination asset written once through `manager`, whose check can be run again."""

    defs: dg.Definitions
    check_key: dg.AssetCheckKey
    partition_key: str | None = None
    tags: Mapping[str, str] | None = None

    def write(self) -> Verdict:
        """Materialize the source and the destination asset; its check runs with them."""
        job = self.defs.resolve_implicit_global_asset_job_def()
        return _verdict(
            job.execute_in_process(
                partition_key=self.partition_key, tags=dict(self.tags or {}), raise_on_error=False
            )
        )

    def check(self) -> Verdict:
        """Run only the reconciliation check against what the target holds now."""
        return _verdict(
            dg.materialize(
                [*self.defs.assets, *self.defs.asset_checks],  # type: ignore[list-item]
                resources=self.defs.resources,
                # the source again (the same rows): Dagster infers a job's partitions from its
                # assets, and a job of partitioned checks alone has none
                selection=dg.AssetSelection.assets("source")
                | dg.AssetSelection.checks(self.check_key),
                partition_key=self.partition_key,
                tags=dict(self.tags or {}),
                raise_on_error=False,
            )
        )


def _verdict(result: dg.ExecuteInProcessResult) -> Verdict:
    evaluations = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    if not evaluations:
        failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        raise AssertionError(
            "no check evaluation; "
            + "; ".join(str(f.event_specific_data.error.message) for f in failures)
        )
    found = evaluations[-1]
    return Verdict(
        found.passed,
        found.description or "",
        {k: getattr(v, "value", v) for k, v in found.metadata.items()},
    )


def reconciled(
    tmp_path: Path,
    manager: dg.ConfigurableIOManager,
    frame: pl.DataFrame,
    *,
    metadata: Mapping[str, Any] | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    partition_key: str | None = None,
    tags: Mapping[str, str] | None = None,
    key: dg.AssetKey = KEY,
    readback: Any = None,
    eager: bool = False,
) -> Reconciled:
    """`source` (kept as Parquet in `tmp_path`) and `key` written from it through `manager`.

    `readback` (a sink module's `readback` function) wraps an official manager; `eager` hands
    the manager a DataFrame (the official DuckDB manager takes nothing else).
    """
    policy = dg.BackfillPolicy.single_run() if partitions_def else None

    expr = (metadata or {}).get("partition_expr")

    @dg.asset(
        name="source",
        partitions_def=partitions_def,
        backfill_policy=policy,
        metadata={"partition_expr": expr} if expr else {},
    )
    def source(context: dg.AssetExecutionContext) -> pl.DataFrame:
        if partitions_def is None or not expr:
            return frame
        window = context.partition_time_window
        column = pl.col(expr)
        return frame.filter((column >= window.start.date()) & (column < window.end.date()))

    if eager:

        def land(frame: pl.LazyFrame) -> pl.DataFrame:
            return frame.collect()
    else:

        def land(frame: pl.LazyFrame) -> pl.LazyFrame:  # type: ignore[misc]
            return frame

    destination = dg.asset(
        key=key,
        ins={"frame": dg.AssetIn("source")},
        io_manager_key="sink_io_manager",
        metadata=dict(metadata or {}),
        partitions_def=partitions_def,
        backfill_policy=policy,
    )(land)
    checks = reconcile_checks([destination], "sink_io_manager", readback, manager)
    defs = dg.Definitions(
        assets=[source, destination],
        asset_checks=checks,
        resources={
            "io_manager": FileIOManager(format="parquet", base_path=str(tmp_path / "storage")),
            "sink_io_manager": manager,
        },
    )
    check_key = next(iter(checks[0].check_keys))
    return Reconciled(defs, check_key, partition_key, tags)

"""Through Dagster: a one-asset graph whose asset returns the frame, landed by `handle_output`.

An approach built here reports three figures, so a reader sees what the IO manager costs apart
from what Dagster costs around it:

- the whole `dg.materialize` run (the runner's own clock around the approach);
- `write_seconds`: the manager's own `handle_output`, from Dagster's event log: from the
  STEP_OUTPUT event (logged just before Dagster calls `handle_output`) to the next event, which
  Dagster logs once `handle_output` has returned. It needs nothing of the manager, so it times
  ours and the official managers alike; `stopwatch_seconds` is our managers' own figure
  (`honey_duck/write_seconds` in the materialization metadata), for comparison;
- `empty_run_seconds`: Dagster's fixed cost, the same asset (returning the LazyFrame unread)
  through `dg.InMemoryIOManager`, run in the same child right after the measured run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from honey_duck_dev.benchmarks.approaches._base import Approach, Figures
from honey_duck_dev.benchmarks.inputs import TABLE

# The generated sales span these 24 months (`honey_duck.pipeline.generate`: 2024 and 2025).
FIRST_MONTH, LAST_MONTH, END = "2024-01-01", "2025-12-01", "2026-01-01"
PARTITION_COLUMN = "sale_date"


@dataclass(frozen=True)
class Shape:
    """How the one asset is declared and run: its metadata, and whether it is monthly."""

    # Managers that take DataFrames only get what the project's group hands them: a collect.
    eager: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # 24 monthly partitions (`partition_expr` on sale_date), all in one single-run range, with
    # the range tags a single-run backfill carries: one call lands every partition.
    monthly: bool = False

    def tags(self) -> dict[str, str]:
        if not self.monthly:
            return {}
        return {
            "dagster/asset_partition_range_start": FIRST_MONTH,
            "dagster/asset_partition_range_end": LAST_MONTH,
        }

    def asset(self, source: Path, *, eager: bool) -> Any:
        """The asset `sales_enriched`, returning `source` scanned (collected if `eager`)."""
        import dagster as dg

        options: dict[str, Any] = {"name": TABLE, "metadata": dict(self.metadata)}
        if self.monthly:
            options["partitions_def"] = dg.MonthlyPartitionsDefinition(
                start_date=FIRST_MONTH, end_date=END
            )
            options["backfill_policy"] = dg.BackfillPolicy.single_run()
            options["metadata"]["partition_expr"] = PARTITION_COLUMN
        if eager:

            @dg.asset(**options)
            def table_eager() -> pl.DataFrame:
                return pl.scan_parquet(source).collect()

            return table_eager

        @dg.asset(**options)
        def table_lazy() -> pl.LazyFrame:
            return pl.scan_parquet(source)  # for a monthly asset, the whole range's rows

        return table_lazy


def handle_output_seconds(instance: Any, run_id: str) -> float | None:
    """Seconds from the STEP_OUTPUT event to the next event Dagster logged (after
    `handle_output` returned); None if the log lacks them."""
    started = None
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:  # a log line (a warning of the manager's): not a step boundary
            continue
        if event.event_type_value == "STEP_OUTPUT":
            started = entry.timestamp
        elif started is not None:
            return entry.timestamp - started
    return None


def materialize(source: Path, io_manager: object, shape: Shape = Shape()) -> dict[str, float]:
    """Materialize `sales_enriched` from `source` through `io_manager`, as a user's run would;
    the manager's own seconds, from the run's event log and its metadata."""
    import dagster as dg

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [shape.asset(source, eager=shape.eager)],
        resources={"io_manager": io_manager},
        instance=instance,
        tags=shape.tags(),
        raise_on_error=True,
    )
    figures: dict[str, float] = {}
    seconds = handle_output_seconds(instance, result.run_id)
    if seconds is not None:
        figures["write_seconds"] = seconds
    for materialization in result.asset_materializations_for_node(TABLE)[:1]:
        stopwatch = materialization.metadata.get("honey_duck/write_seconds")
        if stopwatch is not None:
            figures["stopwatch_seconds"] = float(stopwatch.value)  # type: ignore[arg-type]
    return figures


def empty_run(source: Path, shape: Shape = Shape()) -> float:
    """Seconds of Dagster's fixed cost: the same asset, its LazyFrame unread, kept in memory."""
    import dagster as dg

    asset = shape.asset(source, eager=False)
    start = time.perf_counter()
    dg.materialize(
        [asset],
        resources={"io_manager": dg.InMemoryIOManager()},
        tags=shape.tags(),
        raise_on_error=True,
    )
    return time.perf_counter() - start


def through_dagster(
    label: str, manager: Callable[[Path], object], *imports: str, shape: Shape = Shape()
) -> Approach:
    """An approach that lands the table through `manager(out)` in a `dg.materialize` run.

    `imports`: the manager's modules, imported before the clock starts, like Dagster itself.
    """

    def run(source: Path, out: Path) -> Figures:
        return materialize(source, manager(out), shape)

    def fixed_cost(source: Path) -> float:
        return empty_run(source, shape)

    return Approach(label, run, imports=imports, dagster=True, empty_run=fixed_cost)


def warm_up() -> None:
    """One empty Dagster run, so Dagster's first-run lazy imports are not timed as writing."""
    import dagster as dg

    @dg.asset
    def warm_up() -> None:
        return None

    dg.materialize([warm_up], raise_on_error=True)

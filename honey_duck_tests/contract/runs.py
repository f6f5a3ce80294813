"""Run one asset (and a consumer of it) through an IO manager, as the sink tests do, and the
partitioned scenarios every sink's tests share."""

from collections.abc import Callable
from datetime import date

import dagster as dg
import polars as pl

MONTHLY = dg.MonthlyPartitionsDefinition(start_date="2024-01-01", end_date="2024-05-01")
CHANNELS = dg.StaticPartitionsDefinition(["gallery", "online"])
MULTI = dg.MultiPartitionsDefinition({"month": MONTHLY, "channel": CHANNELS})
RANGE = {  # January to April: the range end is a partition key, and it is included
    "dagster/asset_partition_range_start": "2024-01-01",
    "dagster/asset_partition_range_end": "2024-04-01",
}


def run(
    io: dg.ConfigurableIOManager,
    produce: Callable[..., object],
    *,
    metadata: dict | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    partition_key: str | None = None,
    tags: dict | None = None,
    consume: Callable[..., object] | None = None,
    consume_metadata: dict | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize `t/table` (and optionally a consumer of it) through `io`."""
    policy = dg.BackfillPolicy.single_run() if partitions_def else None
    table = dg.asset(
        name="table",
        key_prefix=["t"],
        metadata=metadata or {},
        partitions_def=partitions_def,
        backfill_policy=policy,
    )(produce)
    assets = [table]
    if consume is not None:
        assets.append(
            dg.asset(
                name="consumer",
                ins={"table": dg.AssetIn(["t", "table"], metadata=consume_metadata or {})},
                partitions_def=partitions_def,
                backfill_policy=policy,
                io_manager_key="mem",
            )(consume)
        )
    defs = dg.Definitions(
        assets=assets, resources={"io_manager": io, "mem": dg.InMemoryIOManager()}
    )
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(partition_key=partition_key, tags=tags, raise_on_error=False)


def error_of(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures, "expected the run to fail"
    error = failures[0].event_specific_data.error
    return error.cause.message if error.cause else error.message


def months(numbers: list[int], channel: str = "online") -> pl.DataFrame:
    """Two rows per month of 2024 in `numbers`: ids 10m and 10m+1, days 1 and 2."""
    rows = [(m * 10 + i, date(2024, m, 1 + i), channel) for m in numbers for i in (0, 1)]
    return pl.DataFrame(rows, schema={"id": pl.Int64, "d": pl.Date, "c": pl.String}, orient="row")


def backfill_then_rerun_march(
    io: dg.ConfigurableIOManager,
    metadata: dict,
    after_backfill: Callable[[], None],
) -> dg.ExecuteInProcessResult:
    """The range scenario of every sink: January to April in one single-run backfill, every
    row "first" (`after_backfill` then checks the target with its own client), then a rerun of
    March alone with one "second" row. Asserts what the manager itself must show: both runs
    succeed, the rerun's consumer reads only March and only the columns it asks for, and the
    rerun counts one row. Returns the rerun; the caller checks the target again."""

    def produce(context: dg.AssetExecutionContext) -> pl.LazyFrame:
        window = context.partition_time_window
        return months(list(range(window.start.month, window.end.month)), "first").lazy()

    result = run(io, produce, metadata=metadata, partitions_def=MONTHLY, tags=RANGE)
    assert result.success, error_of(result)
    after_backfill()
    seen: dict[str, pl.DataFrame] = {}
    rerun = run(
        io,
        lambda: months([3], "second").head(1),
        metadata=metadata,
        partitions_def=MONTHLY,
        partition_key="2024-03-01",
        consume=lambda table: seen.update(table=table),
        consume_metadata={"columns": ["c", "id"]},
    )
    assert rerun.success, error_of(rerun)
    assert seen["table"].rows() == [("second", 30)]  # only March, only the columns asked for
    count = rerun.get_asset_materialization_events()[0].materialization.metadata
    assert count["dagster/partition_row_count"].value == 1
    return rerun

"""Run one asset (and a consumer of it) through an IO manager, as the sink tests do."""

from collections.abc import Callable

import dagster as dg


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

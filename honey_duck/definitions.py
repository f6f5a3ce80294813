"""The honey_duck code location: one pipeline, landed in every destination of the environment."""

from __future__ import annotations

import dagster as dg

from honey_duck import environments, pipeline, preflight, sinks
from honey_duck.environments import Environment, Setting
from honey_duck.seam import SinkIOManager, check_assets
from honey_duck.seam.faults import redact
from honey_duck.seam.reconcile import reconcile_checks
from honey_duck.sinks import SINKS
from honey_duck.targets.files import FileIOManager

STORAGE_URL = Setting("HONEY_DUCK_STORAGE_URL")  # `prod`: where the pipeline keeps its tables
INPUT_URL = Setting("HONEY_DUCK_INPUT_URL")  # `prod`: where the source CSVs are


def pipeline_resources(env: Environment) -> dict[str, object]:
    """Where the pipeline reads its inputs and keeps the tables every sink consumes."""
    if env.name == "prod":
        inputs, storage = INPUT_URL.env_var(), STORAGE_URL.env_var()
    else:
        inputs, storage = str(env.input_dir), env.path("storage")
    return {
        "input_files": pipeline.InputFiles(directory=inputs),
        "io_manager": FileIOManager(format="parquet", sink="storage", base_path=storage),
    }


def build(env: Environment) -> dg.Definitions:
    """The definitions of one environment: the same assets everywhere, only resources differ."""
    resources = {**pipeline_resources(env), **sinks.resources(env)}
    assets = [
        *pipeline.assets,
        *(a for s in SINKS.values() for a in labelled(s.assets, resources[s.resource_key])),
    ]
    check_assets(assets, resources)  # a mode a sink cannot keep fails here, not mid-run
    all_jobs = jobs()
    return dg.Definitions(
        assets=assets,
        asset_checks=[*pipeline.asset_checks, *destination_checks(resources)],
        resources=resources,
        jobs=all_jobs,
        schedules=monthly_schedules(all_jobs),
        sensors=[run_failure_alert],
    )


def destination_checks(resources: dict[str, object]) -> list[dg.AssetChecksDefinition]:
    """A reconciliation check beside every destination asset (`honey_duck.seam.reconcile`)."""
    checks = []
    for sink in SINKS.values():
        manager = resources[sink.resource_key]
        if isinstance(manager, SinkIOManager):
            checks += reconcile_checks(sink.assets, sink.resource_key)
        elif sink.readback is not None:  # an official manager: its target module reads it
            checks += reconcile_checks(sink.assets, sink.resource_key, sink.readback, manager)
    return checks


def monthly_schedules(
    jobs: list[dg.UnresolvedAssetJobDefinition],
) -> list[dg.ScheduleDefinition]:
    """The month just ended, landed on the 2nd at 03:00 UTC by every monthly job.

    Off until turned on (in the UI's *Automation* page, or `dagster schedule start`): a
    template should not start writing to your databases by itself.
    """
    return [
        dg.build_schedule_from_partitioned_job(
            job,
            minute_of_hour=0,
            hour_of_day=3,
            day_of_month=2,
            default_status=dg.DefaultScheduleStatus.STOPPED,
            name=f"{job.name}_schedule",
        )
        for job in jobs
        if job.name == MONTHLY_JOB or job.name.endswith("_monthly")
    ]


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=60,
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    """Log each failed run with its first failed step: the hook for a pager, chat or e-mail."""
    failures = context.get_step_failure_events()
    step = failures[0].step_key if failures else "no step"
    context.log.error(
        f"run {context.dagster_run.run_id} of {context.dagster_run.job_name} failed at {step}:"
        f" {context.failure_event.message}"
    )


def labelled(assets: list[dg.AssetsDefinition], manager: object) -> list[dg.AssetsDefinition]:
    """A destination's assets as the UI should show them in this environment.

    Where an embedded stand-in holds the data (`local`), its kind badge and a sentence say so;
    where the location is known when the definitions load (no variable to resolve), the asset's
    overview shows its table name and URI before anything is materialized.
    """
    if not isinstance(manager, SinkIOManager):
        return assets
    stand_in = manager.stand_in()
    target = None if any(preflight.env_vars(manager)) else manager.target()

    def relabel(spec: dg.AssetSpec) -> dg.AssetSpec:
        metadata = dict(spec.metadata)
        if target is not None:
            location = target.locate(spec.key, metadata)
            metadata["dagster/table_name"] = target.table_name(location)
            if spec.partitions_def is None:  # a partition's own location comes with its run
                metadata["dagster/uri"] = redact(target.uri(location), target.secrets())
        if stand_in is None:
            return spec.replace_attributes(metadata=metadata)
        kind, sentence = stand_in
        return spec.replace_attributes(
            kinds={kind, "polars"},
            description=f"{spec.description} Here {sentence}.",
            metadata={**metadata, "honey_duck/stand_in": sentence},
        )

    return [a.map_asset_specs(relabel) for a in assets]


MONTHLY_JOB = "monthly_backfill"


def jobs() -> list[dg.UnresolvedAssetJobDefinition]:
    """What a click in the UI should do: one job per destination and one for the months.

    `<sink>_tables` lands a destination's unpartitioned tables with everything upstream of them
    (Launch, no partition to pick); `monthly_backfill` lands `sales_monthly` in every
    destination that writes a range in one run, for the partitions you select. A job runs all
    its assets under one backfill policy, so a sink that stores one partition per run (the
    official Parquet manager) gets its own `<sink>_monthly` job instead of slowing the rest.
    """
    per_sink = [
        dg.define_asset_job(
            f"{word}_tables",
            selection=dg.AssetSelection.assets(
                *(a.key for a in sink.assets if a.partitions_def is None)
            ).upstream(),
            description=f"The {word} destination's unpartitioned tables and what they read.",
        )
        for word, sink in SINKS.items()
    ]
    ranged, single = [], []
    for word, sink in SINKS.items():
        for assets_def in sink.assets:
            if assets_def.partitions_def is None:
                continue
            policy = assets_def.backfill_policy
            one_per_run = policy is not None and policy.max_partitions_per_run == 1
            (single if one_per_run else ranged).append((word, assets_def.key))
    monthly = dg.define_asset_job(
        MONTHLY_JOB,
        selection=dg.AssetSelection.assets(pipeline.sales_monthly, *(k for _, k in ranged)),
        description="sales_monthly in every destination that writes a range in one run.",
    )
    one_by_one = [
        dg.define_asset_job(
            f"{word}_monthly",
            selection=dg.AssetSelection.assets(key),
            description=f"sales_monthly in {word}, one run per month (its manager's limit).",
        )
        for word, key in single
    ]
    return [*per_sink, monthly, *one_by_one]


@dg.definitions
def defs() -> dg.Definitions:
    """Read `HONEY_DUCK_ENV` once, when the code location loads, and build its definitions."""
    return build(environments.current())

"""Parquet: dagster-polars' official PolarsParquetIOManager, one file per table and partition."""

import dagster as dg
from dagster_polars import PolarsParquetIOManager

from honey_duck.environments import Environment
from honey_duck.sinks.assets import sink_assets
from honey_duck.sinks.files import FILES_URL_VAR

# The official manager stores one partition per run, so backfills here run one run per month.
assets = sink_assets(
    "parquet", kinds={"parquet", "polars"}, modes=False, backfill=dg.BackfillPolicy.multi_run(1)
)


def resources(env: Environment) -> dict:
    base_dir = dg.EnvVar(FILES_URL_VAR) if env.name == "prod" else env.path("output")
    return {"parquet_io_manager": PolarsParquetIOManager(base_dir=base_dir)}

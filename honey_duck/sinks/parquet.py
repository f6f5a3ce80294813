"""Parquet: dagster-polars' official PolarsParquetIOManager, one file per table and partition."""

import dagster as dg
from dagster_polars import PolarsParquetIOManager

from honey_duck.environments import Environment
from honey_duck.sinks._files import FILES_URL
from honey_duck.sinks._group import sink_assets
from honey_duck.targets.parquet import readback

TESTED_AGAINST = "local disk; read back with pyarrow"

# The official manager stores one partition per run, so backfills here run one run per month.
assets = sink_assets(
    "parquet", kinds={"parquet", "polars"}, modes=False, backfill=dg.BackfillPolicy.multi_run(1)
)


def local(env: Environment) -> PolarsParquetIOManager:
    return PolarsParquetIOManager(base_dir=env.path("output"))


dev = local  # local disk in `dev` too: the official manager is not pointed at the S3 server


def prod(env: Environment) -> PolarsParquetIOManager:
    return PolarsParquetIOManager(base_dir=FILES_URL.env_var())


__all__ = ["TESTED_AGAINST", "assets", "dev", "local", "prod", "readback"]

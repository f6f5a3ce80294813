"""DuckDB: dagster-duckdb-polars' official DuckDBPolarsIOManager; tables in schema `duckdb`."""

import dagster as dg
from dagster_duckdb_polars import DuckDBPolarsIOManager

from honey_duck.environments import Environment
from honey_duck.sinks.assets import sink_assets

DATABASE_VAR = "HONEY_DUCK_DUCKDB_DATABASE"

# The official manager takes DataFrames only, so the group collects before handing over.
assets = sink_assets("duckdb", kinds={"duckdb", "polars"}, eager=True, modes=False)


def resources(env: Environment) -> dict:
    database = dg.EnvVar(DATABASE_VAR) if env.name == "prod" else env.path("honey_duck.duckdb")
    return {"duckdb_io_manager": DuckDBPolarsIOManager(database=database)}

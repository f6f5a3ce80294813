"""DuckDB: dagster-duckdb-polars' official DuckDBPolarsIOManager; tables in schema `duckdb`."""

from dagster_duckdb_polars import DuckDBPolarsIOManager

from honey_duck.environments import Environment, Setting
from honey_duck.sinks._group import sink_assets
from honey_duck.targets.duckdb import readback

TESTED_AGAINST = "embedded DuckDB; read back with the duckdb client"

DATABASE = Setting("HONEY_DUCK_DUCKDB_DATABASE")  # `prod`: the database file (or MotherDuck URL)

# The official manager takes DataFrames only, so the group collects before handing over.
assets = sink_assets("duckdb", kinds={"duckdb", "polars"}, eager=True, modes=False)


def local(env: Environment) -> DuckDBPolarsIOManager:
    return DuckDBPolarsIOManager(database=env.path("honey_duck.duckdb"))


dev = local  # the embedded database is the real thing in `dev` too


def prod(env: Environment) -> DuckDBPolarsIOManager:
    return DuckDBPolarsIOManager(database=DATABASE.env_var())


__all__ = ["TESTED_AGAINST", "assets", "dev", "local", "prod", "readback"]

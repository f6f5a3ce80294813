"""PostgreSQL: our PostgresIOManager (binary COPY, staging + swap); DuckDB stands in locally."""

import dagster as dg

from honey_duck.environments import Environment
from honey_duck.io.localsql import LocalSqlIOManager
from honey_duck.io.postgres import PostgresIOManager
from honey_duck.sinks.assets import sink_assets

assets = sink_assets("postgres", kinds={"postgres", "polars"})


def resources(env: Environment) -> dict:
    if env.name == "local":
        manager = LocalSqlIOManager(database=env.path("postgres_local.duckdb"))
    elif env.name == "dev":
        manager = PostgresIOManager.from_url(env.setting("HONEY_DUCK_POSTGRES_URL"))
    else:
        manager = PostgresIOManager(
            host=dg.EnvVar("HONEY_DUCK_POSTGRES_HOST"),
            port=dg.EnvVar.int("HONEY_DUCK_POSTGRES_PORT"),
            user=dg.EnvVar("HONEY_DUCK_POSTGRES_USER"),
            password=dg.EnvVar("HONEY_DUCK_POSTGRES_PASSWORD"),
            database=dg.EnvVar("HONEY_DUCK_POSTGRES_DATABASE"),
        )
    return {"postgres_io_manager": manager}

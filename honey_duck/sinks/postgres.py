"""PostgreSQL: our PostgresIOManager (binary COPY, staging + swap); DuckDB stands in locally."""

import dagster as dg

from honey_duck.environments import POSTGRES_URL_VAR, Environment
from honey_duck.io.connections import PostgresConfig
from honey_duck.io.localsql import LocalSqlIOManager
from honey_duck.io.postgres import PostgresIOManager
from honey_duck.sinks.assets import sink_assets

# What this sink's tests run against (the README's destination table shows it).
TESTED_AGAINST = "a private PostgreSQL 15 cluster on loopback; read back with psycopg and `psql`"

assets = sink_assets("postgres", kinds={"postgres", "polars"}, pool="postgres")
DEV_SERVICES = (POSTGRES_URL_VAR,)  # the settings naming the servers this sink needs in `dev`


def prod_connection(prefix: str, port: int | None = None) -> PostgresConfig:
    """A PostgreSQL-protocol connection from `<prefix>_HOST`, `_PORT` (unless given), `_USER`,
    `_PASSWORD` and `_DATABASE`."""
    return PostgresConfig(
        host=dg.EnvVar(f"{prefix}_HOST"),
        port=port if port is not None else dg.EnvVar.int(f"{prefix}_PORT"),
        user=dg.EnvVar(f"{prefix}_USER"),
        password=dg.EnvVar(f"{prefix}_PASSWORD"),
        database=dg.EnvVar(f"{prefix}_DATABASE"),
    )


def resources(env: Environment) -> dict:
    if env.name == "local":
        manager = LocalSqlIOManager(database=env.path("postgres_local.duckdb"))
    elif env.name == "dev":
        manager = PostgresIOManager.from_url(env.setting(POSTGRES_URL_VAR))
    else:
        manager = PostgresIOManager(connection=prod_connection("HONEY_DUCK_POSTGRES"))
    return {"postgres_io_manager": manager}

"""PostgreSQL: our PostgresIOManager (binary COPY, staging + swap); DuckDB stands in locally."""

import dagster as dg

from honey_duck.connections import PostgresConfig
from honey_duck.environments import DEV_HOST, Environment, Setting
from honey_duck.sinks._group import sink_assets
from honey_duck.targets.postgres import PostgresIOManager
from honey_duck.targets.standin import StandInIOManager

TESTED_AGAINST = "a private PostgreSQL 15 cluster on loopback; read back with psycopg and `psql`"

URL = Setting("HONEY_DUCK_POSTGRES_URL", dev=f"postgresql://postgres@{DEV_HOST}:55432/postgres")
SETTINGS = (URL,)
DEV_SERVICES = {"postgres": URL}

assets = sink_assets("postgres", kinds={"postgres", "polars"}, pool="postgres")


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


def local(env: Environment) -> StandInIOManager:
    return StandInIOManager.of(PostgresIOManager(), database=env.path("postgres_local.duckdb"))


def dev(env: Environment) -> PostgresIOManager:
    return PostgresIOManager.from_url(env.setting(URL))


def prod(env: Environment) -> PostgresIOManager:
    return PostgresIOManager(connection=prod_connection("HONEY_DUCK_POSTGRES"))

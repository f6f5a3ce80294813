"""MongoDB: our MongoIOManager (bulk BSON, staging + rename, transactions); DuckDB locally."""

import os

import dagster as dg

from honey_duck.environments import MONGO_URL_VAR, Environment
from honey_duck.io.localsql import LocalSqlIOManager
from honey_duck.io.mongo import MongoIOManager
from honey_duck.sinks.assets import sink_assets

assets = sink_assets("mongo", kinds={"mongodb", "polars"})

DATABASE_VAR = "HONEY_DUCK_MONGO_DATABASE"  # not a secret: read when the definitions load
DEFAULT_DATABASE = "honey_duck"


def resources(env: Environment) -> dict:
    database = os.environ.get(DATABASE_VAR) or DEFAULT_DATABASE
    if env.name == "local":
        manager = LocalSqlIOManager(database=env.path("mongo_local.duckdb"))
    elif env.name == "dev":
        manager = MongoIOManager(url=env.setting(MONGO_URL_VAR), database=database)
    else:
        manager = MongoIOManager(url=dg.EnvVar(MONGO_URL_VAR), database=database)
    return {"mongo_io_manager": manager}

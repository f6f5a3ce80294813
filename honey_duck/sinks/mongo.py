"""MongoDB: our MongoIOManager (bulk BSON, staging + rename, transactions); DuckDB locally."""

import dagster as dg

from honey_duck.environments import MONGO_DATABASE_VAR, MONGO_URL_VAR, Environment
from honey_duck.io.localsql import LocalSqlIOManager
from honey_duck.io.mongo import MongoIOManager
from honey_duck.sinks.assets import sink_assets

# What this sink's tests run against (the README's destination table shows it).
TESTED_AGAINST = (
    "SecantusDB (MongoDB wire protocol on WiredTiger, a one-node replica set) on "
    "loopback; read back with pymongo `find` and `aggregate`"
)

assets = sink_assets("mongo", kinds={"mongodb", "polars"}, pool="mongo")
DEV_SERVICES = (MONGO_URL_VAR,)  # the settings naming the servers this sink needs in `dev`


def resources(env: Environment) -> dict:
    manager: dg.ConfigurableIOManager
    if env.name == "local":
        manager = LocalSqlIOManager(database=env.path("mongo_local.duckdb"))
    elif env.name == "dev":
        manager = MongoIOManager(
            url=env.setting(MONGO_URL_VAR), database=env.setting(MONGO_DATABASE_VAR)
        )
    else:  # the URL carries the password: both from the deployment's variables
        manager = MongoIOManager(
            url=dg.EnvVar(MONGO_URL_VAR), database=dg.EnvVar(MONGO_DATABASE_VAR)
        )
    return {"mongo_io_manager": manager}

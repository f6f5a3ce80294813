"""MongoDB: our MongoIOManager (bulk BSON, staging + rename, transactions); DuckDB locally."""

from honey_duck.environments import DEV_HOST, Environment, Setting
from honey_duck.sinks._group import sink_assets
from honey_duck.targets.mongo import MongoConnection, MongoIOManager
from honey_duck.targets.standin import StandInIOManager

TESTED_AGAINST = (
    "SecantusDB (MongoDB wire protocol on WiredTiger, a one-node replica set) on "
    "loopback; read back with pymongo `find` and `aggregate`"
)

# one node of a replica set, which the driver must not try to discover beyond
URL = Setting("HONEY_DUCK_MONGO_URL", dev=f"mongodb://{DEV_HOST}:57017/?directConnection=true")
DATABASE = Setting("HONEY_DUCK_MONGO_DATABASE", dev="honey_duck")
SETTINGS = (URL, DATABASE)
DEV_SERVICES = {"mongo": URL}

assets = sink_assets("mongo", kinds={"mongodb", "polars"}, pool="mongo")


def local(env: Environment) -> StandInIOManager:
    return StandInIOManager.of(MongoIOManager(), database=env.path("mongo_local.duckdb"))


def dev(env: Environment) -> MongoIOManager:
    return MongoIOManager(
        connection=MongoConnection(url=env.setting(URL)), database=env.setting(DATABASE)
    )


def prod(env: Environment) -> MongoIOManager:
    # the URL carries the password: both from the deployment's variables
    return MongoIOManager(
        connection=MongoConnection(url=URL.env_var()), database=DATABASE.env_var()
    )

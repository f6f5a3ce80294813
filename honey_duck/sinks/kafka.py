"""Kafka: our KafkaIOManager (one JSON message per row, one transaction per write, compacted
topics keyed by `upsert_keys`); DuckDB stands in locally."""

import dagster as dg

from honey_duck.environments import DEV_HOST, Environment, Setting
from honey_duck.sinks._group import MODES, sink_assets
from honey_duck.targets.kafka import KafkaConnection, KafkaIOManager
from honey_duck.targets.standin import StandInIOManager

TESTED_AGAINST = (
    "noida-db's Kafka endpoint on loopback; read back with a plain confluent-kafka "
    "`read_committed` consumer"
)

BOOTSTRAP = Setting("HONEY_DUCK_KAFKA_BOOTSTRAP", dev=f"{DEV_HOST}:59092")
SETTINGS = (BOOTSTRAP,)
DEV_SERVICES = {"kafka": BOOTSTRAP}

# A compacted topic keeps the last message per key: every table names the key of its rows.
OVERRIDES = {
    "sales_enriched": {"write_mode": "replace", "upsert_keys": ["sale_id"]},
    "artworks_summary": MODES["artworks_summary"],
    "sales_monthly": {"write_mode": "replace", "upsert_keys": ["sale_id"]},
}

assets = sink_assets("kafka", kinds={"kafka", "polars"}, overrides=OVERRIDES, pool="kafka")


def local(env: Environment) -> StandInIOManager:
    return StandInIOManager.of(KafkaIOManager(), database=env.path("kafka_local.duckdb"))


def dev(env: Environment) -> KafkaIOManager:
    return KafkaIOManager(connection=KafkaConnection(bootstrap_servers=env.setting(BOOTSTRAP)))


def prod(env: Environment) -> KafkaIOManager:
    return KafkaIOManager(
        connection=KafkaConnection(
            bootstrap_servers=BOOTSTRAP.env_var(),
            username=dg.EnvVar("HONEY_DUCK_KAFKA_USERNAME"),
            password=dg.EnvVar("HONEY_DUCK_KAFKA_PASSWORD"),
            security_protocol="SASL_SSL",
        )
    )

"""Kafka: our KafkaIOManager (one JSON message per row, one transaction per write, compacted
topics keyed by `upsert_keys`); DuckDB stands in locally."""

import dagster as dg

from honey_duck.environments import KAFKA_BOOTSTRAP_VAR, Environment
from honey_duck.io.kafka import KafkaIOManager
from honey_duck.io.localsql import LocalSqlIOManager
from honey_duck.sinks.assets import MODES, sink_assets

# What this sink's tests run against (the README's destination table shows it).
TESTED_AGAINST = (
    "noida-db's Kafka endpoint on loopback; read back with a plain confluent-kafka "
    "`read_committed` consumer"
)

# A compacted topic keeps the last message per key: every table names the key of its rows.
OVERRIDES = {
    "sales_enriched": {"write_mode": "replace", "upsert_keys": ["sale_id"]},
    "artworks_summary": MODES["artworks_summary"],
    "sales_monthly": {"write_mode": "replace", "upsert_keys": ["sale_id"]},
}

assets = sink_assets("kafka", kinds={"kafka", "polars"}, overrides=OVERRIDES, pool="kafka")
DEV_SERVICES = (KAFKA_BOOTSTRAP_VAR,)  # the settings naming the servers this sink needs in `dev`


def resources(env: Environment) -> dict:
    manager: dg.ConfigurableIOManager
    if env.name == "local":
        manager = LocalSqlIOManager(database=env.path("kafka_local.duckdb"))
    elif env.name == "dev":
        manager = KafkaIOManager(bootstrap_servers=env.setting(KAFKA_BOOTSTRAP_VAR))
    else:
        manager = KafkaIOManager(
            bootstrap_servers=dg.EnvVar("HONEY_DUCK_KAFKA_BOOTSTRAP"),
            username=dg.EnvVar("HONEY_DUCK_KAFKA_USERNAME"),
            password=dg.EnvVar("HONEY_DUCK_KAFKA_PASSWORD"),
            security_protocol="SASL_SSL",
        )
    return {"kafka_io_manager": manager}

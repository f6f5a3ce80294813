"""CSV: one file per table and per partition, typed by a schema file beside each one."""

from honey_duck.environments import Environment
from honey_duck.sinks.assets import sink_assets
from honey_duck.sinks.files import DEV_SERVICES as DEV_SERVICES  # S3, in `dev`
from honey_duck.sinks.files import file_resources

# What this sink's tests run against (the README's destination table shows it).
TESTED_AGAINST = "local disk; read back with DuckDB's `read_csv`"

assets = sink_assets("csv", kinds={"csv", "polars"})


def resources(env: Environment) -> dict:
    return file_resources("csv", env)

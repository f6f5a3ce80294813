"""JSON: newline-delimited JSON files, typed by a schema file beside each one."""

from honey_duck.environments import Environment
from honey_duck.sinks.assets import sink_assets
from honey_duck.sinks.files import DEV_SERVICES as DEV_SERVICES  # S3, in `dev`
from honey_duck.sinks.files import file_resources

# What this sink's tests run against (the README's destination table shows it).
TESTED_AGAINST = "local disk and an fsspec filesystem; read back with DuckDB's `read_json`"

assets = sink_assets("json", kinds={"json", "polars"})


def resources(env: Environment) -> dict:
    return file_resources("json", env)

"""Feather: Arrow IPC files (zstd), the format Power BI and pandas read fastest."""

from honey_duck.environments import Environment
from honey_duck.sinks.assets import sink_assets
from honey_duck.sinks.files import DEV_SERVICES as DEV_SERVICES  # S3, in `dev`
from honey_duck.sinks.files import file_resources

# What this sink's tests run against (the README's destination table shows it).
TESTED_AGAINST = "local disk; read back with pyarrow"

assets = sink_assets("feather", kinds={"feather", "polars"})


def resources(env: Environment) -> dict:
    return file_resources("feather", env)

"""Excel: workbooks written in constant memory, split across sheets past Excel's row limit."""

from honey_duck.environments import Environment
from honey_duck.sinks.assets import sink_assets
from honey_duck.sinks.files import DEV_SERVICES as DEV_SERVICES  # S3, in `dev`
from honey_duck.sinks.files import file_resources

# What this sink's tests run against (the README's destination table shows it).
TESTED_AGAINST = "local disk; read back with openpyxl"

assets = sink_assets("excel", kinds={"excel", "polars"})


def resources(env: Environment) -> dict:
    return file_resources("excel", env)

"""JSON: newline-delimited JSON files, typed by a schema file beside each one."""

from honey_duck.sinks._files import DEV_SERVICES, SETTINGS, file_environments
from honey_duck.sinks._group import sink_assets

TESTED_AGAINST = "local disk and an fsspec filesystem; read back with DuckDB's `read_json`"

assets = sink_assets("json", kinds={"json", "polars"})
local, dev, prod = file_environments("json")

__all__ = ["DEV_SERVICES", "SETTINGS", "TESTED_AGAINST", "assets", "dev", "local", "prod"]

"""CSV: one file per table and per partition, typed by a schema file beside each one."""

from honey_duck.sinks._files import DEV_SERVICES, SETTINGS, file_environments
from honey_duck.sinks._group import sink_assets

TESTED_AGAINST = "local disk; read back with DuckDB's `read_csv`"

assets = sink_assets("csv", kinds={"csv", "polars"})
local, dev, prod = file_environments("csv")

__all__ = ["DEV_SERVICES", "SETTINGS", "TESTED_AGAINST", "assets", "dev", "local", "prod"]

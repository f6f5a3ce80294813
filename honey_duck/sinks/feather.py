"""Feather: Arrow IPC files (zstd), the format Power BI and pandas read fastest."""

from honey_duck.sinks._files import DEV_SERVICES, SETTINGS, file_environments
from honey_duck.sinks._group import sink_assets

TESTED_AGAINST = "local disk; read back with pyarrow"

assets = sink_assets("feather", kinds={"feather", "polars"})
local, dev, prod = file_environments("feather")

__all__ = ["DEV_SERVICES", "SETTINGS", "TESTED_AGAINST", "assets", "dev", "local", "prod"]

"""Excel: workbooks written in constant memory, split across sheets past Excel's row limit."""

from honey_duck.sinks._files import DEV_SERVICES, SETTINGS, file_environments
from honey_duck.sinks._group import sink_assets

TESTED_AGAINST = "local disk; read back with openpyxl"

assets = sink_assets("excel", kinds={"excel", "polars"})
local, dev, prod = file_environments("excel")

__all__ = ["DEV_SERVICES", "SETTINGS", "TESTED_AGAINST", "assets", "dev", "local", "prod"]

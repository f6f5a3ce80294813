"""Parquet: dagster-polars' official PolarsParquetIOManager, one file per table and partition."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
import polars as pl
from dagster_polars import PolarsParquetIOManager
from upath import UPath

from honey_duck.environments import Environment
from honey_duck.io import core
from honey_duck.sinks.assets import sink_assets
from honey_duck.sinks.files import FILES_URL_VAR
from honey_duck.sinks.official import OfficialReadback

# The official manager stores one partition per run, so backfills here run one run per month.
assets = sink_assets(
    "parquet", kinds={"parquet", "polars"}, modes=False, backfill=dg.BackfillPolicy.multi_run(1)
)

# What this sink's tests run against (the README's destination table shows it).
TESTED_AGAINST = "local disk; read back with pyarrow"


def resources(env: Environment) -> dict:
    base_dir = dg.EnvVar(FILES_URL_VAR) if env.name == "prod" else env.path("output")
    return {"parquet_io_manager": PolarsParquetIOManager(base_dir=base_dir)}


class ParquetReadback(OfficialReadback):
    """The official manager's files, as the reconciliation check reads them: with polars, from
    `<base_dir>/<key>.parquet`, or `<base_dir>/<key>/<partition>.parquet` per partition."""

    word = "parquet"
    # it writes any schema it is given, and what it writes polars reads back unchanged
    why = "the official manager only replaces a file (one per partition)"

    def __init__(self, manager: PolarsParquetIOManager) -> None:
        self.root = str(manager.base_dir).rstrip("/")
        self.options = dict(manager.cloud_storage_options or {}) or None

    def name(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> str:
        return str(UPath(self.root).joinpath(*key.path)) + ".parquet"

    def read(
        self, key: dg.AssetKey, metadata: Mapping[str, Any], partitions: core.PartitionSlice | None
    ) -> pl.LazyFrame:
        folder = UPath(self.root).joinpath(*key.path)
        if partitions is None:
            paths = [f"{folder}.parquet"]
        else:
            paths = [str(folder / f"{part.key}.parquet") for part in partitions.parts]
        return pl.scan_parquet(paths, storage_options=self.options)


def readback(manager: PolarsParquetIOManager) -> ParquetReadback:
    return ParquetReadback(manager)

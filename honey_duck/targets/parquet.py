"""Parquet through dagster-polars' official `PolarsParquetIOManager`: how its files are read back
(with polars, one file per table or partition)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
import polars as pl
from dagster_polars import PolarsParquetIOManager
from upath import UPath

from honey_duck import seam
from honey_duck.seam import OfficialReadback


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
        self, key: dg.AssetKey, metadata: Mapping[str, Any], partitions: seam.PartitionSlice | None
    ) -> pl.LazyFrame:
        folder = UPath(self.root).joinpath(*key.path)
        if partitions is None:
            paths = [f"{folder}.parquet"]
        else:
            paths = [str(folder / f"{part.key}.parquet") for part in partitions.parts]
        return pl.scan_parquet(paths, storage_options=self.options)


def readback(manager: PolarsParquetIOManager) -> ParquetReadback:
    return ParquetReadback(manager)

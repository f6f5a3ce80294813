"""Parquet written by the file sink (the official manager's files are `targets/parquet.py`)."""

from __future__ import annotations

import polars as pl

from honey_duck.targets.files.formats.base import Destination, FileRecord, Written
from honey_duck.targets.files.formats.feather import FeatherFormat


class ParquetFormat(FeatherFormat):
    """Parquet: the schema travels inside the file, row groups of `batch_rows` rows."""

    name, ext = "parquet", "parquet"

    def write(self, frame: pl.LazyFrame, path: Destination, *, batch_rows: int) -> Written:
        frame.sink_parquet(path, row_group_size=batch_rows)
        return Written()

    def scan(
        self,
        path: str,
        record: FileRecord | None,
        storage_options: dict[str, str] | None = None,
    ) -> pl.LazyFrame:
        return pl.scan_parquet(path, storage_options=storage_options)

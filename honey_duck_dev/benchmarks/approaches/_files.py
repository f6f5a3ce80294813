"""What the file formats' modules share: our `FileIOManager`, whole and in monthly partitions,
polars' one-pass partitioned sink, and the check of what the manager wrote."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from honey_duck_dev.benchmarks.approaches._base import (
    OURS_READER,
    Approach,
    Checked,
    Count,
    duckdb_count,
    plain,
)
from honey_duck_dev.benchmarks.approaches._dagster import PARTITION_COLUMN, Shape, through_dagster
from honey_duck_dev.benchmarks.inputs import TABLE

# The manager's module, and what it imports when it first writes (so that is not timed).
MANAGER_IMPORTS = ("honey_duck.targets.files.target", "pyarrow")


def _manager(fmt: str) -> Callable[[Path], object]:
    def manager(out: Path) -> object:
        from honey_duck.targets.files import FileIOManager

        return FileIOManager(format=fmt, base_path=str(out))  # type: ignore[arg-type]

    return manager


def ours(fmt: str) -> Approach:
    """Our `FileIOManager` writing `fmt`, through a Dagster run."""
    label = f'FileIOManager(format="{fmt}") via dg.materialize'
    return through_dagster(label, _manager(fmt), *MANAGER_IMPORTS)


def ours_monthly(fmt: str) -> Approach:
    """Our `FileIOManager` writing `fmt`, one file per month, all 24 in one single-run range."""
    label = f'FileIOManager(format="{fmt}"), 24 monthly partitions, one single-run range'
    return through_dagster(label, _manager(fmt), *MANAGER_IMPORTS, shape=Shape(monthly=True))


def floor_monthly(fmt: str, ext: str) -> Approach:
    """Polars' one-pass partitioned sink: `sink_<fmt>(pl.PartitionBy(key=month))`, same files."""

    def run(source: Path, out: Path) -> None:
        frame = pl.scan_parquet(source)
        sink = {"csv": frame.sink_csv, "json": frame.sink_ndjson, "parquet": frame.sink_parquet}
        month = pl.col(PARTITION_COLUMN).dt.truncate("1mo").alias("month")

        def name(args: pl.io.partition.FileProviderArgs) -> str:  # as ours names them
            return f"{args.partition_keys['month'].item()}.{ext}"

        # Polars 1.44 spells `PartitionByKey(...)` as `PartitionBy(key=...)`; the key is derived,
        # so include_key=False keeps the files to the table's own 15 columns, as ours writes.
        target = pl.PartitionBy(out / TABLE, key=month, include_key=False, file_path_provider=name)
        sink[fmt](target, mkdir=True)

    method = {"csv": "sink_csv", "json": "sink_ndjson", "parquet": "sink_parquet"}[fmt]
    return plain(f"scan_parquet → {method}(pl.PartitionBy(key=month)), one pass", run)


def count_monthly(ext: str) -> Count:
    """Rows in every partition file under `out/sales_enriched/`, read by DuckDB or pyarrow."""

    def count(out: Path) -> int:
        files = sorted((out / TABLE).glob(f"*.{ext}"))
        if not files:
            raise FileNotFoundError(f"no {ext} partition files under {out / TABLE}")
        if ext == "parquet":
            import pyarrow.parquet as pq

            return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        reader = "read_csv" if ext == "csv" else "read_json"
        options = "" if ext == "csv" else ", format='newline_delimited'"
        return duckdb_count(f"SELECT count(*) FROM {reader}(?{options})", [str(f) for f in files])

    return count


def checked(fmt: str, write: Approach) -> Checked:
    """Our write of `fmt` and the check of it, read back by the manager's own reader."""

    def readback(out: Path) -> object:
        return _manager(fmt)(out).readback()  # type: ignore[attr-defined]

    return Checked(fmt, "ours", write, readback, OURS_READER.format("FileIOManager"))

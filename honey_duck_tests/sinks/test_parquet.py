"""The parquet group, landed by the README's main command and read back with pyarrow."""

from pathlib import Path

import polars as pl
import pyarrow.parquet

from honey_duck_tests.sinks.readback import assert_files_land, assert_idempotent


def read(path: Path) -> pl.DataFrame:
    return pl.from_arrow(pyarrow.parquet.read_table(path))


def test_parquet_tables_and_partitions_equal_the_pipeline(local_run) -> None:
    assert_files_land(local_run, "parquet", "parquet", read)


def test_parquet_replace_is_idempotent(local_run) -> None:
    assert_idempotent(local_run, "parquet")

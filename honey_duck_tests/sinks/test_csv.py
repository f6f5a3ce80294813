"""The csv group, landed by the README's main command and read back with DuckDB's CSV reader."""

from pathlib import Path

import duckdb
import polars as pl

from honey_duck_tests.sinks.readback import assert_files_land, assert_idempotent, assert_reconciled


def read(path: Path) -> pl.DataFrame:
    return duckdb.sql(f"select * from read_csv('{path}')").pl()


def test_csv_tables_and_partitions_equal_the_pipeline(local_run) -> None:
    assert_files_land(local_run, "csv", "csv", read)


def test_csv_replace_is_idempotent(local_run) -> None:
    assert_idempotent(local_run, "csv")


def test_csv_reconciliation_checks_pass_after_the_main_command(local_run) -> None:
    """Every csv asset's check read it back and found the transform's rows, value for value."""
    assert_reconciled(local_run, "csv")

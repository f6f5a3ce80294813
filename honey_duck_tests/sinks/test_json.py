"""The json group, landed by the README's main command and read back with DuckDB's JSON reader."""

from pathlib import Path

import duckdb
import polars as pl

from honey_duck_tests.sinks.readback import assert_files_land, assert_idempotent, assert_reconciled


def read(path: Path) -> pl.DataFrame:
    return duckdb.sql(f"select * from read_json('{path}')").pl()


def test_json_tables_and_partitions_equal_the_pipeline(local_run) -> None:
    assert_files_land(local_run, "json", "json", read)


def test_json_replace_is_idempotent(local_run) -> None:
    assert_idempotent(local_run, "json")


def test_json_reconciliation_checks_pass_after_the_main_command(local_run) -> None:
    """Every json asset's check read it back and found the transform's rows, value for value."""
    assert_reconciled(local_run, "json")

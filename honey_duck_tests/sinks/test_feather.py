"""The feather group, landed by the README's main command and read back with pyarrow."""

from pathlib import Path

import polars as pl
import pyarrow.feather

from honey_duck_tests.sinks.readback import assert_files_land, assert_idempotent, assert_reconciled


def read(path: Path) -> pl.DataFrame:
    return pl.from_arrow(pyarrow.feather.read_table(path))


def test_feather_tables_and_partitions_equal_the_pipeline(local_run) -> None:
    assert_files_land(local_run, "feather", "feather", read)


def test_feather_replace_is_idempotent(local_run) -> None:
    assert_idempotent(local_run, "feather")


def test_feather_reconciliation_checks_pass_after_the_main_command(local_run) -> None:
    """Every feather asset's check read it back and found the transform's rows, value for value."""
    assert_reconciled(local_run, "feather")

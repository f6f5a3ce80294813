"""The parquet group, landed by the README's main command and read back with pyarrow."""

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet
from dagster_polars import PolarsParquetIOManager

from honey_duck.sinks import parquet as parquet_sink
from honey_duck_tests.contract.reconciling import reconciled
from honey_duck_tests.sinks.readback import assert_files_land, assert_idempotent, assert_reconciled


def read(path: Path) -> pl.DataFrame:
    return pl.from_arrow(pyarrow.parquet.read_table(path))


def test_parquet_tables_and_partitions_equal_the_pipeline(local_run) -> None:
    assert_files_land(local_run, "parquet", "parquet", read)


def test_parquet_replace_is_idempotent(local_run) -> None:
    assert_idempotent(local_run, "parquet")


def test_parquet_reconciliation_checks_pass_after_the_main_command(local_run) -> None:
    """Every parquet asset's check read it back and found the transform's rows, value for value."""
    assert_reconciled(local_run, "parquet")


def test_the_reconciliation_check_reads_the_official_file_and_names_a_deleted_row(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    frame = pl.DataFrame({"id": [1, 2, 3], "name": ["a", None, "Zoë"]})
    manager = PolarsParquetIOManager(base_dir=str(out))
    run = reconciled(
        tmp_path,
        manager,
        frame,
        metadata={"reconcile_keys": ["id"]},
        readback=parquet_sink.readback,
    )
    verdict = run.write()
    assert verdict.passed, verdict.description
    path = out / "t" / "table.parquet"
    table = pyarrow.parquet.read_table(path)
    pyarrow.parquet.write_table(table.filter(pa.compute.not_equal(table["id"], 2)), path)
    verdict = run.check()
    assert not verdict.passed
    assert "2 rows where the asset has 3" in verdict.description, verdict.description
    assert "missing id [2]" in verdict.description

"""The duckdb group (official DuckDBPolarsIOManager), read back with DuckDB's own client."""

from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
from dagster_duckdb_polars import DuckDBPolarsIOManager

from honey_duck.sinks import duckdb as duckdb_sink
from honey_duck_tests.contract.reconciling import reconciled
from honey_duck_tests.sinks.readback import KEYS, assert_reconciled, assert_same_rows


def test_duckdb_tables_equal_the_pipeline_after_two_runs(local_run) -> None:
    database = local_run.env.home / "honey_duck.duckdb"
    with duckdb.connect(str(database), read_only=True) as con:
        for table, key in KEYS.items():
            landed = con.sql(f"select * from duckdb.{table}").pl()
            # Two materializations and still one copy of each row: replace is idempotent.
            assert_same_rows(landed, local_run.storage(table), key)
        months = con.sql(
            "select count(distinct date_trunc('month', sale_date)) from duckdb.sales_monthly"
        ).fetchone()
        assert months == (24,)


def test_duckdb_reconciliation_checks_pass_after_the_main_command(local_run) -> None:
    """Every duckdb asset's check read it back and found the transform's rows, value for value."""
    assert_reconciled(local_run, "duckdb")


def test_the_reconciliation_check_reads_the_official_table_and_names_what_was_changed(
    tmp_path: Path,
) -> None:
    database = str(tmp_path / "official.duckdb")
    frame = pl.DataFrame({"id": [1, 2, 3], "day": [None, None, None]}).with_columns(
        pl.Series("day", ["2024-01-05", "2024-02-05", "2024-02-20"]).str.to_date()
    )
    months = dg.MonthlyPartitionsDefinition(start_date="2024-01-01", end_date="2024-03-01")
    run = reconciled(
        tmp_path,
        DuckDBPolarsIOManager(database=database),
        frame,
        metadata={"partition_expr": "day", "reconcile_keys": ["id"]},
        partitions_def=months,
        partition_key="2024-02-01",
        readback=duckdb_sink.readback,
        eager=True,
    )
    verdict = run.write()
    assert verdict.passed, verdict.description
    assert verdict.metadata["honey_duck/target_rows"] == 2  # February only
    assert verdict.metadata["honey_duck/target"] == f"{database} :: t.table"
    with duckdb.connect(database) as con:
        con.execute("UPDATE t.\"table\" SET day = DATE '2024-02-21' WHERE id = 3")
    verdict = run.check()
    assert not verdict.passed
    assert "values of `day` differ" in verdict.description, verdict.description
    assert "changed id [3]" in verdict.description

"""The duckdb group (official DuckDBPolarsIOManager), read back with DuckDB's own client."""

import duckdb

from honey_duck_tests.sinks.readback import KEYS, assert_same_rows


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

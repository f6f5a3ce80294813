"""How the sink tests compare what landed with what the pipeline computed."""

from collections.abc import Callable
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from honey_duck_tests.conftest import LocalRun

KEYS = {"sales_enriched": "sale_id", "artworks_summary": "artwork_id", "sales_monthly": "sale_id"}


def assert_same_rows(landed: pl.DataFrame, expected: pl.DataFrame, key: str) -> None:
    """Equal values, column by column, whatever row order or integer width the reader gives."""
    landed = landed.select(expected.columns).sort(key)
    assert_frame_equal(landed, expected.sort(key), check_dtypes=False)


def assert_files_land(
    run: LocalRun, sink: str, ext: str, read: Callable[[Path], pl.DataFrame]
) -> None:
    """Each table and every monthly partition file, read by `read`, equals the pipeline's."""
    root = run.env.home / "output" / sink
    for table in ("sales_enriched", "artworks_summary"):
        assert_same_rows(read(root / f"{table}.{ext}"), run.storage(table), KEYS[table])
    months = sorted((root / "sales_monthly").glob(f"*.{ext}"))
    assert len(months) == 24  # 2024-01 .. 2025-12, one file per partition
    assert months[0].name == f"2024-01-01.{ext}"
    landed = pl.concat([read(m) for m in months], how="vertical_relaxed")
    assert_same_rows(landed, run.storage("sales_monthly"), "sale_id")


def assert_reconciled(run: LocalRun, sink: str) -> None:
    """Every asset of `sink` passed its reconciliation check in the second run (the
    partitioned one once per run: per range, or per month for one-partition-per-run sinks)."""
    tables = {k: e for k, e in run.landed.items() if k.path[0] == sink}
    assert len(tables) == 3, sorted(tables)
    for key, entry in tables.items():
        assert not entry.checks_failed, (key, entry.checks_failed)
        assert entry.checks_passed >= 1, key


def assert_idempotent(run: LocalRun, sink: str) -> None:
    """The second materialization rewrote every file of `sink` with the same bytes."""
    now = {
        k: v.read_bytes()
        for k, v in (
            (str(p.relative_to(run.env.home / "output")), p)
            for p in (run.env.home / "output" / sink).rglob("*")
            if p.is_file()
        )
    }
    before = {k: v for k, v in run.first.items() if k.startswith(f"{sink}/")}
    assert now.keys() == before.keys()
    changed = sorted(k for k in now if now[k] != before[k])
    assert not changed, f"rewritten with different bytes: {changed}"


def assert_duckdb_stand_in_lands(run: LocalRun, sink: str) -> None:
    """The `local` stand-in of a SQL sink, read with DuckDB's own client, equals the pipeline."""
    import duckdb

    database = run.env.home / f"{sink}_local.duckdb"
    with duckdb.connect(str(database), read_only=True) as connection:
        for table, key in KEYS.items():
            landed = connection.sql(f'SELECT * FROM "{sink}"."{table}"').pl()
            # Two materializations and still one copy of each row: replace is idempotent.
            assert_same_rows(landed, run.storage(table), key)
        months = connection.sql(
            f"SELECT count(DISTINCT date_trunc('month', sale_date)) FROM {sink}.sales_monthly"
        ).fetchone()
        keys = connection.sql(
            "SELECT constraint_column_names FROM duckdb_constraints() WHERE schema_name = ?"
            " AND table_name = 'artworks_summary' AND constraint_type = 'PRIMARY KEY'",
            params=[sink],
        ).fetchall()
    assert months == (24,)
    assert keys == [(["artwork_id"],)]  # the upsert's key, kept across the second run

"""DuckDB: the official dagster-duckdb-polars manager against one INSERT per row and DuckDB's own
`CREATE TABLE AS SELECT * FROM read_parquet(...)`; ours only on the embedded stand-in, in the
checks (honey_duck's `duckdb` sink is the official manager)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from honey_duck_dev.benchmarks.approaches._base import (
    OURS_READER,
    TO_DICTS,
    Checked,
    Sink,
    dicts,
    duckdb_count,
    hand_written_columns,
    per_row,
    plain,
)
from honey_duck_dev.benchmarks.approaches._dagster import Shape, through_dagster
from honey_duck_dev.benchmarks.inputs import TABLE

DATABASE = "bench.duckdb"
# The duckdb client imports pandas and pyarrow on its first query: before the clock, for all.
CLIENT = ("duckdb", "pandas", "pyarrow")

# The column types a person would write into the CREATE TABLE by hand.
HAND_WRITTEN_TYPES = {
    pl.Int64: "BIGINT",
    pl.Int32: "INTEGER",
    pl.Float64: "DOUBLE",
    pl.String: "VARCHAR",
    pl.Date: "DATE",
}


def naive(source: Path, out: Path) -> None:
    """A hand-written CREATE TABLE, then one parameterised INSERT per row (`executemany`)."""
    import duckdb

    rows = dicts(source)
    columns = hand_written_columns(source, HAND_WRITTEN_TYPES)
    with duckdb.connect(str(out / DATABASE)) as con:
        con.execute(f"CREATE TABLE main.{TABLE} ({', '.join(columns)})")
        marks = ", ".join("?" * len(columns))
        con.executemany(
            f"INSERT INTO main.{TABLE} VALUES ({marks})", [tuple(r.values()) for r in rows]
        )


def official_manager(out: Path) -> object:
    """dagster-duckdb-polars' `DuckDBPolarsIOManager` (DataFrames only: the asset collects)."""
    from dagster_duckdb_polars import DuckDBPolarsIOManager

    return DuckDBPolarsIOManager(database=str(out / DATABASE), schema="main")


def floor(source: Path, out: Path) -> None:
    import duckdb

    with duckdb.connect(str(out / DATABASE)) as con:
        con.execute(f"CREATE TABLE main.{TABLE} AS SELECT * FROM read_parquet(?)", [str(source)])


def count(out: Path) -> int:
    database = out / DATABASE
    if not database.is_file():
        raise FileNotFoundError(f"{database} was not written")
    return duckdb_count(f"SELECT count(*) FROM main.{TABLE}", database=str(database))


def stand_in_manager(out: Path) -> object:
    """Our SQL sink on its embedded DuckDB stand-in (`honey_duck.targets.standin`)."""
    from honey_duck.targets.postgres import PostgresIOManager
    from honey_duck.targets.standin import StandInIOManager

    database = str(out / DATABASE)
    return StandInIOManager.of(PostgresIOManager(), database=database, default_schema="main")


def official_readback(out: Path) -> object:
    from honey_duck.targets.duckdb import readback

    return readback(official_manager(out))


def stand_in_readback(out: Path) -> object:
    return stand_in_manager(out).readback()  # type: ignore[attr-defined]


OFFICIAL = through_dagster(
    "dagster-duckdb-polars DuckDBPolarsIOManager via dg.materialize (asset collects first)",
    official_manager,
    "dagster_duckdb_polars",
    *CLIENT,
    shape=Shape(eager=True),
)

SINKS = {
    "duckdb": Sink(
        count,
        {
            # 300 to 900 rows/s on the machines measured: 10,000 rows take 11 to 32 s
            "naive": per_row(
                f"{TO_DICTS} → CREATE TABLE, executemany(INSERT ... VALUES (?, ...)) per row",
                naive,
                *CLIENT,
                cap=10_000,
            ),
            "official": OFFICIAL,
            "floor": plain("CREATE TABLE AS SELECT * FROM read_parquet(...)", floor, *CLIENT),
        },
    ),
}

CHECKS: dict[str, Checked] = {
    "duckdb": Checked(
        "duckdb",
        "stand-in",
        through_dagster(
            "StandInIOManager (embedded DuckDB) via dg.materialize",
            stand_in_manager,
            "honey_duck.targets.standin",
            *CLIENT,
        ),
        stand_in_readback,
        OURS_READER.format("StandInIOManager"),
    ),
    "duckdb_official": Checked(
        "duckdb",
        "official",
        OFFICIAL,
        official_readback,
        "honey_duck.targets.duckdb.readback: duckdb Arrow batches",
    ),
}
